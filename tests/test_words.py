import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.analysis.alignment import SmallSampleWarning
from xstilts.analysis.words import (
    csls_scores,
    decode_dictd_number,
    encode_dictd_number,
    load_dictd,
    measure_words,
    word_pairs,
    word_retrieval,
    word_set,
    word_vectors,
)
from xstilts.errors import XstiltsError
from xstilts.evaluate.mining import margin_scores

FIXTURES = Path(__file__).parent / "fixtures" / "dictd"
EXPECTED = {
    "a romp of a film": ["ein Filmspaß"],
    "cat": ["Katze", "Mieze", "Kater"],
    "check": ["rückfragen", "nachfragen"],
    "dog": ["Hund", "Rüde"],
    "house": ["Haus", "Gebäude"],
    "ice cream": ["Eis", "Speiseeis"],
    "0.42": ["0", "42"],
}


def test_dictd_numbers():
    assert decode_dictd_number("A") == 0
    assert decode_dictd_number("B") == 1
    assert decode_dictd_number("BA") == 64
    assert decode_dictd_number("+") == 62 and decode_dictd_number("/") == 63
    assert decode_dictd_number("FVrr") == 5 * 64**3 + 21 * 64**2 + 43 * 64 + 43
    for value in (0, 1, 63, 64, 12345, 79560757):
        assert decode_dictd_number(encode_dictd_number(value)) == value
    with pytest.raises(ValueError):
        decode_dictd_number("A=")


@pytest.mark.parametrize("stem", ["freedict-eng-deu-mini", "freedict-eng-deu-minidz"])
def test_load_dictd_plain_and_dictzip(stem):
    dictionary = load_dictd(FIXTURES / f"{stem}.index")
    assert dictionary == EXPECTED  # meta entries skipped, examples/notes/see-lines out, two "cat" merged


def test_word_pairs_single_words_lowercased_and_seeded():
    dictionary = load_dictd(FIXTURES / "freedict-eng-deu-mini.index")
    pairs = word_pairs(dictionary)
    assert pairs == [
        ("cat", "kater"),
        ("cat", "katze"),
        ("cat", "mieze"),
        ("check", "nachfragen"),
        ("check", "rückfragen"),
        ("dog", "hund"),
        ("dog", "rüde"),
        ("house", "gebäude"),
        ("house", "haus"),
    ]
    assert word_pairs({"Cat": ["Katze", "katze", "Kat ze"], "CAT": ["KATZE"]}) == [("cat", "katze")]
    sample = word_pairs(dictionary, max_pairs=4, seed=3)
    assert len(sample) == 4 and set(sample) <= set(pairs)
    assert sample == word_pairs(dictionary, max_pairs=4, seed=3)
    assert any(word_pairs(dictionary, max_pairs=4, seed=s) != sample for s in range(10))


def _copy_fixture(tmp_path):
    index = tmp_path / "d.index"
    shutil.copy(FIXTURES / "freedict-eng-deu-mini.index", index)
    shutil.copy(FIXTURES / "freedict-eng-deu-mini.dict", tmp_path / "d.dict")
    return index


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("cat\tCf\n", "expected 'headword<TAB>offset<TAB>length'"),
        ("cat\tC=\tBZ\n", "bad offset"),
        ("cat\tCf\tBBBB\n", "beyond the end"),
    ],
)
def test_malformed_index_line_names_file_and_line(tmp_path, bad_line, message):
    index = _copy_fixture(tmp_path)
    lines = index.read_text().splitlines(keepends=True)
    lines.insert(2, bad_line)
    index.write_text("".join(lines))
    with pytest.raises(XstiltsError, match=message) as error:
        load_dictd(index)
    assert f"{index}:3:" in str(error.value)


def test_missing_files(tmp_path):
    with pytest.raises(XstiltsError, match="not found"):
        load_dictd(tmp_path / "nothing.index")
    index = _copy_fixture(tmp_path)
    (tmp_path / "d.dict").unlink()
    with pytest.raises(XstiltsError, match="no data file"):
        load_dictd(index)
    (tmp_path / "d.dict.dz").write_bytes(b"not gzip at all")
    with pytest.raises(XstiltsError, match="d.dict.dz"):
        load_dictd(index)


@pytest.fixture(scope="module")
def tiny():
    from xstilts.models.checkpoint import build_model

    model, tokenizer, _ = build_model("tiny-random-xlmr", {})
    return model.encoder.eval(), tokenizer


def test_word_vectors_are_sub_token_means(tiny):
    encoder, tokenizer = tiny
    words = ["house", "unbelievably", "dog", "Zeitgeist"]
    layers = [0, 1, -1]
    vectors = word_vectors(encoder, tokenizer, words, layers, batch_size=3)
    n_states = encoder.config.num_hidden_layers + 1
    assert vectors.shape == (3, 4, encoder.config.hidden_size) and vectors.dtype == np.float32
    for column, word in enumerate(words):
        ids = tokenizer(word)["input_ids"]  # <s> pieces </s>, word alone, no padding
        with torch.inference_mode():
            states = encoder(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        assert len(states) == n_states
        pieces = len(ids) - 2
        assert (pieces == 1) == (word in ("house", "dog"))
        for row, layer in enumerate(layers):
            manual = states[layer][0, 1 : 1 + pieces].mean(0).numpy()
            np.testing.assert_allclose(vectors[row, column], manual, rtol=1e-4, atol=1e-5)
            if pieces == 1:  # a one-piece word is exactly its piece's state
                np.testing.assert_allclose(vectors[row, column], states[layer][0, 1].numpy(), atol=1e-5)
    with pytest.raises(XstiltsError, match="out of range"):
        word_vectors(encoder, tokenizer, words, [n_states])


def _planted(n=6, dim=16, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim))
    permutation = rng.permutation(n)
    src = base + noise * rng.normal(size=(n, dim))
    tgt = np.empty_like(base)
    tgt[permutation] = base + noise * rng.normal(size=(n, dim))
    return src, tgt, [(i, int(permutation[i])) for i in range(n)]


def test_weak_retrieval_of_a_planted_permutation_is_exact():
    src, tgt, gold = _planted()
    result = word_retrieval(src, tgt, gold, setting="weak", k=3)
    assert result.precision == 1.0 and result.n_queries == 6 and result.n_correct == 6
    np.testing.assert_array_equal(result.predicted, [j for _, j in gold])


def test_several_gold_translations_count_once_and_any_is_right():
    src, tgt, gold = _planted()
    extra = [(0, (gold[0][1] + 1) % 6), (0, (gold[0][1] + 2) % 6)]
    result = word_retrieval(src, tgt, gold + extra, k=3)
    assert result.n_queries == 6 and result.precision == 1.0
    wrong_only = word_retrieval(src, tgt, [gold[0], (1, gold[2][1])] + extra, k=3)
    assert wrong_only.n_queries == 2 and wrong_only.n_correct == 1  # word 0 right, word 1 wrong


def test_strong_setting_same_language_near_duplicates_steal_the_neighbour():
    src, tgt, gold = _planted(n=6, noise=0.2, seed=1)
    # words 0 and 1 get a same-language near-duplicate (rows 6, 7), much closer than their translations
    rng = np.random.default_rng(5)
    src = np.vstack([src, src[0] + 0.001 * rng.normal(size=16), src[1] + 0.001 * rng.normal(size=16)])
    weak = word_retrieval(src, tgt, gold, setting="weak", k=2)
    strong = word_retrieval(src, tgt, gold, setting="strong", k=2)
    assert weak.precision == 1.0
    assert strong.n_queries == 6 and strong.n_correct == 4 and strong.precision == pytest.approx(4 / 6)
    assert list(strong.predicted[:2]) == [-1, -1] and not strong.correct[:2].any()
    # the query is never its own neighbour: without duplicates strong equals weak
    src6 = src[:6]
    assert word_retrieval(src6, tgt, gold, setting="strong", k=2).precision == 1.0


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_csls_against_direct_numpy_and_mining():
    rng = np.random.default_rng(0)
    src, tgt, k = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)), 3
    cos = _unit(src) @ _unit(tgt).T
    r_src = np.sort(cos, axis=1)[:, -k:].mean(1)
    r_tgt = np.sort(cos, axis=0)[-k:, :].mean(0)
    direct = 2 * cos - r_src[:, None] - r_tgt[None, :]
    np.testing.assert_allclose(csls_scores(src, tgt, k), direct, atol=1e-5)
    np.testing.assert_allclose(
        csls_scores(src, tgt, k), margin_scores(src, tgt, k=k, margin="csls"), atol=1e-5
    )
    gold = [(i, int(direct[i].argmax())) for i in range(7)]
    assert word_retrieval(src, tgt, gold, k=k).precision == 1.0


def test_strong_csls_against_direct_numpy():
    rng = np.random.default_rng(1)
    src, tgt, k = rng.normal(size=(6, 4)), rng.normal(size=(5, 4)), 2
    s, t = _unit(src), _unit(tgt)
    pool = np.vstack([t, s])
    cos = s @ pool.T
    for i in range(6):
        cos[i, 5 + i] = -np.inf  # the query itself is no candidate
    r_query = np.sort(cos, axis=1)[:, -k:].mean(1)
    r_pool = np.sort(cos.T, axis=1)[:, -k:].mean(1)  # each candidate's k nearest queries (never itself)
    scores = 2 * cos - r_query[:, None] - r_pool[None, :]
    best = scores.argmax(1)
    expected = np.where(best < 5, best, -1)
    result = word_retrieval(src, tgt, [(i, 0) for i in range(6)], setting="strong", k=k)
    np.testing.assert_array_equal(result.predicted, expected)
    assert result.n_correct == int((expected == 0).sum())


def test_bad_retrieval_input():
    src, tgt, gold = _planted()
    with pytest.raises(XstiltsError, match="setting"):
        word_retrieval(src, tgt, gold, setting="medium")
    with pytest.raises(XstiltsError, match="outside"):
        word_retrieval(src, tgt, [(0, 6)])
    with pytest.raises(XstiltsError, match="dimension"):
        word_retrieval(src, tgt[:, :3], gold)


def test_word_set_rows_and_gold():
    words = word_set([("katze", "cat"), ("hund", "dog"), ("katze", "kitty"), ("hund", "dog")])
    assert words.source_words == ["hund", "katze"]
    assert words.target_words == ["cat", "dog", "kitty"]
    assert words.gold == [(0, 1), (1, 0), (1, 2)]
    with pytest.raises(XstiltsError, match="empty"):
        word_set([])
    with pytest.raises(XstiltsError, match="two non-empty strings"):
        word_set([("katze", " ")])
    with pytest.raises(XstiltsError, match="two non-empty strings"):
        word_set([("katze",)])


PAIRS = [("haus", "house"), ("hund", "dog"), ("katze", "cat"), ("katze", "kitty"), ("wasser", "water")]


def test_measure_words_equals_vectors_and_retrieval(tiny):
    encoder, tokenizer = tiny
    n_states = encoder.config.num_hidden_layers + 1
    layers = list(range(n_states))
    with pytest.warns(SmallSampleWarning, match="only 4 word pairs"):
        result = measure_words(encoder, tokenizer, PAIRS, layers + [-1], k=2)
    assert set(result) == {(s, layer) for s in ("weak", "strong") for layer in layers}  # -1 is the last
    assert all(0.0 <= value <= 1.0 for value in result.values())
    words = word_set(PAIRS)
    src = word_vectors(encoder, tokenizer, words.source_words, layers)
    tgt = word_vectors(encoder, tokenizer, words.target_words, layers)
    for setting in ("weak", "strong"):
        for layer in layers:
            direct = word_retrieval(src[layer], tgt[layer], words.gold, setting=setting, k=2)
            assert result[(setting, layer)] == direct.precision
    with pytest.raises(XstiltsError, match="out of range"):
        measure_words(encoder, tokenizer, PAIRS, [n_states])
    with pytest.raises(XstiltsError, match="empty"):
        measure_words(encoder, tokenizer, [], [0])
