"""Parallel data for the alignment analysis: Tatoeba and BUCC from the hub-mirror fixtures and from the
original-format fixture files, the embedded Bible for any pair, and the errors."""

from pathlib import Path

import pytest

from xstilts.analysis.parallel import CORPORA, available_pairs, load_parallel
from xstilts.errors import XstiltsError
from xstilts.tasks import bible
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "hub"
LOCAL = FIXTURES / "local"


pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


# ----------------------------------------------------------------------------------------------- Tatoeba

TATOEBA_HUB = [
    ("Ich habe Hunger.", "I'm hungry."),
    ("Wo ist der Bahnhof?", "Where is the station?"),
    ("Es regnet seit gestern.", "It has been raining since yesterday."),
    ("Tom liest gern Bücher.", "Tom likes reading books."),
]


def test_tatoeba_from_the_hub_mirror_is_the_diagonal():
    corpus = load_parallel("tatoeba", "de", "en", hub_mirror=MIRROR)
    assert (corpus.corpus, corpus.source_lang, corpus.target_lang, corpus.split) == (
        "tatoeba",
        "de",
        "en",
        "test",
    )
    assert corpus.gold == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert list(zip(*corpus.aligned(), strict=True)) == TATOEBA_HUB
    assert corpus.source_ids == corpus.target_ids == [f"tatoeba-test-de-{i}" for i in range(4)]


def test_tatoeba_from_original_files_either_direction():
    de_en = load_parallel("tatoeba", "de", "en", data_dir=LOCAL)
    assert de_en.aligned() == (
        ["Ich habe Hunger.", "Wo ist der Bahnhof?", "Tom liest gern Bücher."],
        ["I'm hungry.", "Where is the station?", "Tom likes reading books."],
    )
    en_de = load_parallel("tatoeba", "en", "de", data_dir=LOCAL)
    assert (en_de.source_lang, en_de.target_lang) == ("en", "de")
    assert en_de.source == de_en.target and en_de.target == de_en.source
    assert en_de.aligned() == (de_en.aligned()[1], de_en.aligned()[0])


def test_tatoeba_examples_is_a_seeded_subset_of_the_pairs():
    picked = load_parallel("tatoeba", "de", "en", examples=2, seed=1, hub_mirror=MIRROR)
    assert len(picked.source) == len(picked.target) == 2 and picked.gold == [(0, 0), (1, 1)]
    pairs = list(zip(*picked.aligned(), strict=True))
    assert all(pair in TATOEBA_HUB for pair in pairs)
    assert [TATOEBA_HUB.index(pair) for pair in pairs] == sorted(TATOEBA_HUB.index(pair) for pair in pairs)
    assert load_parallel("tatoeba", "de", "en", examples=2, seed=1, hub_mirror=MIRROR) == picked
    others = {
        tuple(load_parallel("tatoeba", "de", "en", examples=2, seed=seed, hub_mirror=MIRROR).source)
        for seed in range(6)
    }
    assert len(others) > 1


# -------------------------------------------------------------------------------------------------- BUCC


def test_bucc_from_the_hub_holds_the_gold_pairs_only():
    corpus = load_parallel("bucc", "de", "en", hub_mirror=MIRROR)
    assert corpus.split == "test"
    assert corpus.source_ids == ["de-000012", "de-000078", "de-000231"]
    assert corpus.target_ids == ["en-000345", "en-000016", "en-000090"]
    assert corpus.gold == [(0, 0), (1, 1), (2, 2)]  # every sentence is in a gold pair: no distractor
    assert corpus.aligned()[1] == [
        "The town has about 50,000 inhabitants.",
        "The castle was built in the 12th century.",
        "The station lies north of the old town.",
    ]


def test_bucc_from_original_files_keeps_the_candidate_pools():
    corpus = load_parallel("bucc", "de", "en", data_dir=LOCAL)
    assert corpus.source_ids == ["de-000010", "de-000011", "de-000012"]  # the test split = .training files
    assert corpus.target_ids == ["en-000010", "en-000011", "en-000012"]
    assert corpus.gold == [(0, 1), (2, 0)]  # de-en.training.gold, sorted by source row
    assert corpus.aligned_ids() == (["de-000010", "de-000012"], ["en-000011", "en-000010"])
    assert corpus.aligned() == (
        ["Die Stadt hat rund 50.000 Einwohner.", "Das Schloss wurde im 12. Jahrhundert erbaut."],
        ["The town has about 50,000 inhabitants.", "The castle was built in the 12th century."],
    )
    assert corpus.source[1] == "Der Zug hatte zwanzig Minuten Verspätung."  # distractors stay in the pools
    assert corpus.target[2] == "She plays the violin in an orchestra."

    reverse = load_parallel("bucc", "en", "de", data_dir=LOCAL)
    assert reverse.source_ids == corpus.target_ids and reverse.target_ids == corpus.source_ids
    assert reverse.gold == [(0, 2), (1, 0)]  # re-sorted by the English row
    assert reverse.aligned() == (
        ["The castle was built in the 12th century.", "The town has about 50,000 inhabitants."],
        ["Das Schloss wurde im 12. Jahrhundert erbaut.", "Die Stadt hat rund 50.000 Einwohner."],
    )


def test_bucc_examples_keeps_the_distractors_in_proportion():
    full = load_parallel("bucc", "de", "en", data_dir=LOCAL)
    full_pairs = set(zip(*full.aligned_ids(), strict=True))
    chosen = set()
    for seed in range(8):
        corpus = load_parallel("bucc", "de", "en", examples=1, seed=seed, data_dir=LOCAL)
        assert len(corpus.gold) == 1
        (pair,) = zip(*corpus.aligned_ids(), strict=True)
        assert pair in full_pairs
        chosen.add(pair)
        # half the gold pairs, so round(0.5 x 1) = 1 of each side's one non-gold sentence
        assert "de-000011" in corpus.source_ids and "en-000012" in corpus.target_ids
        assert len(corpus.source) == len(corpus.target) == 2
        assert load_parallel("bucc", "de", "en", examples=1, seed=seed, data_dir=LOCAL) == corpus
    assert chosen == full_pairs  # the seed picks different gold pairs


# ------------------------------------------------------------------------------------------------- Bible


def test_bible_with_english_is_bible_retrieval_and_bible_mining():
    corpus = load_parallel("bible", "de", "en", examples=20)
    retrieval = load_examples(get_task("bible-retrieval"), "test", "de", limit=20)
    assert corpus.split == "test"
    assert corpus.aligned() == ([row["text"] for row in retrieval], [row["translation"] for row in retrieval])
    assert corpus.aligned_ids() == ([row["id"] for row in retrieval],) * 2
    (mining,) = bible.build_examples("bible-mining", "test", "de", limit=20)
    assert corpus.source == list(mining["source"].values())
    assert corpus.target == list(mining["target"].values())
    assert len(corpus.gold) == 20 and len(corpus.source) == len(corpus.target) == 40


def test_bible_any_pair_of_languages():
    corpus = load_parallel("bible", "de", "fr", examples=20, seed=1)
    german, french = (
        bible.build_examples("bible-retrieval", "test", lang, seed=1, limit=20) for lang in "de fr".split()
    )
    assert corpus.aligned_ids() == ([row["id"] for row in german], [row["id"] for row in french])
    assert corpus.aligned() == ([row["text"] for row in german], [row["text"] for row in french])
    # distractors: verses of the test split on one side only, in that side's language
    distractors = set(corpus.target_ids) - set(corpus.aligned_ids()[1])
    assert len(distractors) == 20 and not distractors & set(corpus.source_ids)
    french_verses = bible.load_verses("fr")
    for verse_id, text in zip(corpus.target_ids, corpus.target, strict=True):
        assert french_verses[tuple(int(part) for part in verse_id.split("."))] == text
    assert bible.detect_language(corpus.target) == "fr" and bible.detect_language(corpus.source) == "de"
    assert load_parallel("bible", "fr", "de", examples=20, seed=1).aligned() == corpus.aligned()[::-1]


# ------------------------------------------------------------------------------------- pairs and errors


def test_available_pairs():
    assert set(CORPORA) == {"bible", "tatoeba", "bucc"}
    bucc = [(lang, "en") for lang in ("de", "fr", "ru", "zh")]
    assert available_pairs("bucc") == sorted(bucc + [(b, a) for a, b in bucc])
    tatoeba = available_pairs("tatoeba")
    assert ("de", "en") in tatoeba and ("en", "de") in tatoeba and ("de", "fr") not in tatoeba
    assert len(tatoeba) == 2 * 41  # XTREME's 36 languages and the 5 XTREME-R adds
    pairs = available_pairs("bible")
    assert ("de", "fr") in pairs and ("fr", "de") in pairs and ("en", "en") not in pairs
    assert len(pairs) == len(bible.BIBLE_LANGUAGES) * (len(bible.BIBLE_LANGUAGES) - 1)


def test_unknown_corpus_lists_the_corpora():
    with pytest.raises(
        XstiltsError, match=r"^unknown parallel corpus 'europarl'; valid corpora: bible, bucc, tatoeba$"
    ):
        load_parallel("europarl", "de", "en")
    with pytest.raises(XstiltsError, match="valid corpora: bible, bucc, tatoeba"):
        available_pairs("europarl")


def test_a_pair_without_data_lists_the_available_pairs():
    with pytest.raises(
        XstiltsError,
        match=r"^no parallel data for the pair de-fr in tatoeba; available pairs \(either direction\): "
        r"af-en, ar-en, .*, de-en, .*, zh-en$",
    ):
        load_parallel("tatoeba", "de", "fr", hub_mirror=MIRROR)
    with pytest.raises(
        XstiltsError,
        match=r"^no parallel data for the pair it-en in bucc; available pairs \(either direction\): "
        r"de-en, fr-en, ru-en, zh-en$",
    ):
        load_parallel("bucc", "it", "en", data_dir=LOCAL)
    languages = ", ".join(bible.BIBLE_LANGUAGES)
    for pair in (("nl", "en"), ("en", "en")):
        with pytest.raises(XstiltsError) as err:
            load_parallel("bible", *pair)
        assert str(err.value) == (
            f"no parallel data for the pair {'-'.join(pair)} in bible; available bible languages (any two "
            f"different ones, either direction): {languages}"
        )


def test_examples_must_be_positive():
    for examples in (0, -3):
        with pytest.raises(
            XstiltsError, match=f"examples must be a positive number of sentence pairs, got {examples}"
        ):
            load_parallel("bible", "de", "en", examples=examples)


def test_data_that_cannot_be_found_keeps_the_sources_error(tmp_path):
    with pytest.raises(XstiltsError, match=r"cannot load google/xtreme config bucc18\.fr split test .*"):
        load_parallel("bucc", "fr", "en", data_dir=tmp_path, hub_mirror=tmp_path)
    with pytest.raises(XstiltsError, match=r"tatoeba/tatoeba\.fra-eng and pass that data directory"):
        load_parallel("tatoeba", "en", "fr", data_dir=tmp_path, hub_mirror=tmp_path)
