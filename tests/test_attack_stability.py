"""Alignment stability under attack: flip AUC with its bootstrap, retrieval ranks, and a real forward pass."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from xstilts.analysis.representations import RepresentationCache, load_source_encoder
from xstilts.robustness.records import AttackRecord
from xstilts.robustness.stability import (
    MEASURES,
    _weighted_auc,
    attacked_text,
    flip_auc,
    measure_stability,
    retrieval_ranks,
    row_cosines,
    stability_rows,
    summarise,
)

TINY = "tiny-random-xlmr"


# --- flip AUC on hand-made numbers ----------------------------------------------------------------


def test_drops_that_separate_flips_give_auc_one_and_reversed_zero():
    flipped = np.array([True, True, False, False, False])
    cosines = np.array([[0.2, 0.3, 0.8, 0.9, 0.95], [0.9, 0.8, 0.3, 0.2, 0.1]])  # layer 1 reversed
    ranks = np.ones_like(cosines)
    result = summarise("target", cosines, ranks, ranks, flipped, n_boot=200)
    np.testing.assert_array_equal(result.flip_auc, [1.0, 0.0])
    np.testing.assert_array_equal(result.flip_auc_low, [1.0, 0.0])
    np.testing.assert_array_equal(result.flip_auc_high, [1.0, 0.0])
    np.testing.assert_allclose(result.cosine, cosines.mean(axis=1))
    assert result.examples == 5 and result.flipped == 2


@pytest.mark.parametrize("flipped", [[True, True, True], [False, False, False], []])
def test_undefined_auc_is_nan(flipped):
    drops = np.zeros((2, len(flipped)))
    for values in flip_auc(drops, np.array(flipped, dtype=bool), n_boot=50):
        assert values.shape == (2,) and np.isnan(values).all()


def test_bootstrap_replicate_equals_sklearn_on_the_resample_ties_included():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, 40).astype(float)  # many ties
    flipped = rng.random(40) < 0.4
    order = np.argsort(scores, kind="stable")
    groups = np.flatnonzero(np.r_[True, np.diff(scores[order]) != 0])
    rows = rng.integers(0, 40, (5, 40))
    counts = np.stack([np.bincount(r, minlength=40) for r in rows])
    found = _weighted_auc((counts * flipped)[:, order], (counts * ~flipped)[:, order], groups)
    expected = [roc_auc_score(flipped[r], scores[r]) for r in rows]
    np.testing.assert_allclose(found, expected, rtol=1e-12)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    flipped = rng.random(60) < 0.5
    drops = np.stack([flipped * 0.3 + rng.random(60), rng.random(60)])
    auc, low, high = flip_auc(drops, flipped, n_boot=300, seed=3)
    np.testing.assert_allclose(auc, [roc_auc_score(flipped, d) for d in drops])
    assert np.all(low < auc) and np.all(auc < high) and np.all(high - low < 0.5)
    again = flip_auc(drops, flipped, n_boot=300, seed=3)
    other = flip_auc(drops, flipped, n_boot=300, seed=4)
    np.testing.assert_array_equal(again[1], low)
    assert not np.array_equal(other[1], low)


def test_single_class_resamples_are_skipped_not_a_crash():
    # one flip in four: about a third of the resamples hold no flip
    auc, low, high = flip_auc(
        np.array([0.9, 0.1, 0.2, 0.3]), np.array([True, False, False, False]), n_boot=100
    )
    assert auc[0] == 1.0 and low[0] == 1.0 and high[0] == 1.0


# --- per-example measures -------------------------------------------------------------------------


def test_ranks_count_only_strictly_better_keys():
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # key 3 duplicates key 0
    queries = np.array([[1.0, 0.1], [1.0, 0.1], [0.0, 2.0], [1.0, 0.1]])
    ranks = retrieval_ranks(queries, keys, np.array([0, 2, 2, 1]), batch_size=2)
    np.testing.assert_array_equal(ranks, [1, 3, 2, 4])


def test_row_cosines_known_values_zero_rows_and_rounding():
    a = np.array([[[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 0.0]]])
    b = np.array([[[3.0, 0.0], [-1.0, -1.0], [0.0, 5.0], [1.0, 0.0]]])
    np.testing.assert_allclose(row_cosines(a, b), [[1.0, -1.0, 0.0, 0.0]])  # a zero vector: 0, not NaN
    rounding = np.array([[0.6066357757671799, 0.7294965609839984, 0.5436249914654229]])
    assert row_cosines(rounding, rounding)[0] == 1.0  # unclipped it is 1.0000000000000002


def record(language, original, perturbed, outcome="failed", rid="x"):
    return AttackRecord(
        id=rid,
        language=language,
        label=0,
        prediction_before=0,
        prediction_after=1 if outcome == "successful" else 0,
        outcome=outcome,
        queries=1,
        words=3,
        words_changed=0,
        languages_mixed=[],
        original=original,
        perturbed=perturbed,
    )


def test_the_attacked_text_is_the_changed_field_else_the_first():
    pair = {"premise": "a b", "hypothesis": "c d"}
    changed = record("de", pair, {"premise": "a b", "hypothesis": "c X"})
    assert attacked_text(changed) == ("c d", "c X")
    assert attacked_text(record("de", pair, dict(pair))) == ("a b", "a b")


# --- a real forward pass on the tiny model --------------------------------------------------------

SENTENCES = [
    "Der Hund schläft im Garten.",
    "Die Stadt liegt am Fluss und hat viele Brücken.",
    "Wir essen heute Abend Suppe.",
    "Le chat dort sur le canapé.",
    "Il pleut depuis trois jours.",
]
LANGUAGES = ["de", "de", "de", "fr", "fr"]


@pytest.fixture(scope="module")
def tiny():
    return load_source_encoder(TINY, "cpu")


class CountingLoader:
    def __init__(self, tiny):
        self.tiny, self.loads = tiny, 0

    def __call__(self, source, device):
        self.loads += 1
        return self.tiny


def run(records, english, tmp_path, loader):
    return measure_stability(
        records,
        english,
        {"pretrained": TINY, "intermediate": None, "target": TINY},
        batch_size=2,
        n_boot=20,
        cache=RepresentationCache(tmp_path),
        device="cpu",
        encoder_loader=loader,
    )


def test_identical_texts_keep_cosine_one_and_the_rank(tmp_path, tiny):
    records = [
        record(lang, {"text": text}, {"text": text}, rid=str(i))
        for i, (lang, text) in enumerate(zip(LANGUAGES, SENTENCES, strict=True))
    ]
    # skipped: its perturbed text is unrelated, but it is not measured
    records.append(record("fr", {"text": "Bonjour."}, {"text": "zzz qqq 123 !!"}, "skipped", "s"))
    english = [*SENTENCES, "Hello."]  # English "versions" equal to the clean texts: clean rank is 1
    loader = CountingLoader(tiny)
    results = run(records, english, tmp_path, loader)
    assert list(results) == ["pretrained", "target"] and loader.loads == 2  # once per stage
    assert len(list(tmp_path.glob("*.json"))) == 2  # clean and English texts went through the cache
    for result in results.values():
        assert result.cosine.shape == (3,)  # hidden_states 0..2 of the 2-layer model
        np.testing.assert_allclose(result.cosine, 1.0, atol=1e-5)
        np.testing.assert_array_equal(result.clean_mean_rank, 1.0)
        np.testing.assert_array_equal(result.mean_rank, result.clean_mean_rank)
        np.testing.assert_array_equal(result.top1, 1.0)
        assert result.examples == 5 and result.flipped == 0
        assert np.isnan(result.flip_auc).all()  # nothing flipped: undefined, not a crash


def test_a_perturbed_sentence_moves_and_skipped_english_stays_in_the_pool(tmp_path, tiny):
    records = [
        record("de", {"text": SENTENCES[0]}, {"text": "Der Kater tanzt laut im Garten!"}, "successful", "0"),
        record("de", {"text": SENTENCES[1]}, {"text": SENTENCES[1]}, "failed", "1"),
        record("de", {"text": SENTENCES[2]}, {"text": SENTENCES[2]}, "failed", "2"),
        # skipped, and its English is the first record's adversarial text: that ranks above the source
        record("de", {"text": "Guten Morgen."}, {"text": "Guten Morgen."}, "skipped", "3"),
    ]
    english = [SENTENCES[0], SENTENCES[1], SENTENCES[2], "Der Kater tanzt laut im Garten!"]
    results = run(records, english, tmp_path, CountingLoader(tiny))
    result = results["target"]
    assert np.all(result.cosine <= 1.0) and np.all(result.cosine >= -1.0)
    assert np.all(result.cosine < 1.0 - 1e-4)  # one of three sentences moved, at every layer
    np.testing.assert_array_equal(result.mean_rank, 4 / 3)  # the perturbed one ranks 2nd, the others 1st
    np.testing.assert_array_equal(result.clean_mean_rank, 1.0)
    np.testing.assert_allclose(result.top1, 2 / 3)
    np.testing.assert_array_equal(result.flip_auc, 1.0)  # the only flip is the only moved sentence
    assert result.examples == 3 and result.flipped == 1

    rows = dict(stability_rows(results))
    expected = {f"{stage}:{m}@{k}" for stage in results for m in MEASURES for k in range(3)}
    expected |= {f"{stage}:{what}" for stage in results for what in ("examples", "flipped")}
    assert set(rows) == expected and len(stability_rows(results)) == len(expected)
    assert rows["target:flip_auc_low@2"] == 1.0 and rows["pretrained:flipped"] == 1.0
    assert rows["pretrained:examples"] == 3.0 and rows["target:top1@0"] == pytest.approx(2 / 3)
    assert math.isclose(rows["target:cosine@1"], float(result.cosine[1]))


@pytest.mark.filterwarnings("error")  # and no "mean of empty slice" warning
def test_nothing_attacked_gives_nan_per_layer_without_a_forward_pass(tmp_path, tiny):
    records = [record("de", {"text": "Hallo."}, {"text": "Hallo."}, "skipped")]
    loader = CountingLoader(tiny)
    results = run(records, ["Hello."], tmp_path, loader)
    assert loader.loads == 0
    for result in results.values():
        assert result.examples == 0 and result.flipped == 0
        for measure in MEASURES:
            values = getattr(result, measure)
            assert values.shape == (3,) and np.isnan(values).all()
