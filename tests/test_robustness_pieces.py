"""Known-answer tests of the robustness building blocks: TextAttack's metric definitions on hand-made
results, intervals over seeds, and words of every script as spans into the original text."""

import math

import pytest

from xstilts.robustness.metrics import AttackResult, attack_metrics, over_seeds
from xstilts.robustness.words import replace_words, word_spans, words_of


def test_attack_metrics_follow_textattacks_definitions():
    results = [
        AttackResult("successful", queries=12, words=10, words_changed=2),
        AttackResult("successful", queries=30, words=4, words_changed=1),
        AttackResult("failed", queries=50, words=8),
        AttackResult("skipped", queries=1, words=5),  # already wrong: not counted in queries
        AttackResult("skipped", queries=1, words=6),
    ]
    found = attack_metrics(results)
    assert found["clean_accuracy"] == pytest.approx(3 / 5)
    assert found["accuracy_under_attack"] == pytest.approx(1 / 5)
    assert found["attack_success_rate"] == pytest.approx(2 / 3)
    assert found["average_queries"] == pytest.approx((12 + 30 + 50) / 3)
    assert found["words_perturbed"] == pytest.approx((0.2 + 0.25) / 2)
    assert found["examples"] == 5 and found["skipped"] == 2


def test_attack_metrics_without_attacked_examples_are_nan_not_a_crash():
    found = attack_metrics([AttackResult("skipped", queries=1, words=0)])
    assert found["clean_accuracy"] == 0.0
    assert math.isnan(found["attack_success_rate"]) and math.isnan(found["average_queries"])
    assert math.isnan(attack_metrics([])["clean_accuracy"])
    with pytest.raises(ValueError, match="successful, failed or skipped"):
        AttackResult("won", queries=1, words=1)


def test_over_seeds_is_the_mean_with_a_student_t_interval():
    spread = over_seeds([0.5, 0.6, 0.7])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * sample sd / sqrt(n)
    assert spread.mean == pytest.approx(0.6) and spread.seeds == 3
    assert (spread.low, spread.high) == pytest.approx((0.6 - half, 0.6 + half))
    single = over_seeds([0.4, float("nan")])
    assert single.mean == 0.4 and single.seeds == 1 and math.isnan(single.low)


def test_words_keep_combining_marks_and_split_unspaced_scripts():
    hindi = "नमस्ते दुनिया!"  # virama and vowel signs stay with their consonants
    assert words_of(hindi) == ["नमस्ते", "दुनिया"]
    assert words_of("我爱你, Bob.") == ["我", "爱", "你", "Bob"]
    assert words_of("l'été 2024 est-il là?") == ["l", "été", "est", "il", "là"]


def test_replacing_words_keeps_everything_between_them():
    text = "Je  suis, très content!"
    assert word_spans(text)[1] == (4, 8)
    assert replace_words(text, {1: "ich bin", 3: "froh"}) == "Je  ich bin, très froh!"
    assert replace_words(text, {}) == text
    with pytest.raises(IndexError, match="4 words"):
        replace_words(text, {7: "x"})


def test_a_lexicon_from_link_counts_ranks_partners_and_drops_rare_links():
    from collections import Counter

    from xstilts.robustness.lexicon import lexicon_from_counts

    counts = Counter({("haus", "house"): 9, ("haus", "home"): 4, ("haus", "building"): 4, ("haus", "the"): 1})
    counts[("gott", "god")] = 12
    lexicon = lexicon_from_counts(counts, "de", "en", min_count=2, per_word=2)
    assert lexicon.entries == {"gott": ("god",), "haus": ("house", "building")}  # tie: alphabetical
    assert lexicon.translations("Haus") == ("house", "building") and lexicon.translations("Auto") == ()
    assert lexicon.pair == "de-en" and len(lexicon) == 2


def test_pivoting_through_english_composes_and_inverts_lexicons():
    from xstilts.errors import XstiltsError
    from xstilts.robustness.lexicon import Lexicon, compose, invert

    de_en = Lexicon("de", "en", {"haus": ("house", "home"), "gott": ("god",)})
    en_fr = Lexicon("en", "fr", {"house": ("maison",), "home": ("foyer", "maison"), "god": ("dieu",)})
    de_fr = compose(de_en, en_fr)
    assert de_fr.pair == "de-fr" and de_fr.entries == {"haus": ("maison", "foyer"), "gott": ("dieu",)}
    assert invert(de_en).entries == {"house": ("haus",), "home": ("haus",), "god": ("gott",)}
    with pytest.raises(XstiltsError, match="cannot pivot de-en through de-en"):
        compose(de_en, de_en)


def test_a_dictd_dictionary_is_an_english_lexicon():
    from pathlib import Path

    from xstilts.analysis.words import load_dictd
    from xstilts.robustness.lexicon import dictd_lexicon

    index = Path(__file__).parent / "fixtures" / "dictd" / "freedict-eng-deu-mini.index"
    lexicon = dictd_lexicon(index, "de", per_word=2)
    headword, translations = next(iter(load_dictd(index).items()))
    assert lexicon.pair == "en-de" and lexicon.translations(headword) == tuple(translations[:2])


def test_character_noise_works_on_graphemes_and_keeps_the_ends():
    from xstilts.robustness.noise import noisy_variants

    assert noisy_variants("word", ("swap",)) == ["wrod"]  # first and last stay
    assert noisy_variants("word", ("delete",)) == ["wrd", "wod"]
    assert noisy_variants("word", ("insert",)) == ["woord", "worrd"]
    hindi = "नमस्ते"  # graphemes न, म, स्ते: the conjunct with its virama and vowel sign is one
    assert noisy_variants(hindi, ("delete",)) == ["नस्ते"]
    assert all("्" not in v[:1] for v in noisy_variants(hindi))  # no variant starts with a bare virama
    assert noisy_variants("été", ("diacritics",)) == ["ete"]
    assert noisy_variants("йод", ("diacritics",)) == ["иод"]
    assert noisy_variants("नमस्ते", ("diacritics",)) == []  # vowel signs are not accents
    assert noisy_variants("ab", ("swap", "delete", "insert")) == []  # nothing inside to change
    with pytest.raises(ValueError, match="valid: swap, delete, insert, homoglyph, diacritics"):
        noisy_variants("word", ("typo",))


def test_homoglyphs_are_look_alike_letters_of_another_script():
    import regex

    from xstilts.robustness.noise import noisy_variants

    variants = noisy_variants("house", ("homoglyph",))
    assert {"h\u03bfuse", "h\u043euse"} & set(variants)  # Greek or Cyrillic o for Latin o
    for variant in variants:
        changed = [b for a, b in zip("house", variant, strict=True) if a != b]
        assert len(changed) == 1 and not regex.match(r"\p{Latin}", changed[0])


def test_stop_words_come_per_language():
    from xstilts.robustness.stopwords import stop_words

    assert "und" in stop_words("de") and "the" in stop_words("en") and "और" in stop_words("hi")
    assert stop_words("xx") == frozenset()


def test_a_bible_lexicon_is_built_from_training_chapters_once_and_reused(tmp_path, monkeypatch):
    pytest.importorskip("eflomal")
    from xstilts.errors import XstiltsError
    from xstilts.io import cache_dir
    from xstilts.robustness import lexicon as lexicons

    bible_index = cache_dir() / "bible"  # the user cache's Bible index, shared; lexicons go to tmp_path
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    (tmp_path / "bible").symlink_to(bible_index, target_is_directory=True)
    built = lexicons.bible_lexicon("fr", "de", verses=300)  # aligned_lexicon on 300 training verses
    assert built.pair == "fr-de" and len(built) > 50
    assert "gott" in built.translations("dieu") and "und" in built.translations("et")

    def no_second_alignment(*args, **kwargs):
        raise AssertionError("the cached lexicon should have been read, not aligned again")

    monkeypatch.setattr(lexicons, "align_words", no_second_alignment)
    assert lexicons.bible_lexicon("fr", "de", verses=300) == built
    with pytest.raises(XstiltsError, match="de"):  # an unknown language lists the Bible's languages
        lexicons.bible_lexicon("xx", "de", verses=300)
    assert len(list((tmp_path / "lexicons").glob("bible-fr-de-300-*.json"))) == 1


def test_word_translation_offers_each_embedded_languages_translations_in_the_words_case():
    from xstilts.robustness.code_mixing import Substitute, translated_variants
    from xstilts.robustness.lexicon import Lexicon

    en_de = Lexicon("en", "de", {"house": ("haus", "heim"), "god": ("gott",), "name": ("name",)})
    en_fr = Lexicon("en", "fr", {"house": ("maison",)})
    assert translated_variants("House", [en_de, en_fr]) == [
        Substitute("Haus", "de"),
        Substitute("Heim", "de"),
        Substitute("Maison", "fr"),
    ]
    assert translated_variants("GOD", [en_de]) == [Substitute("GOTT", "de")]
    assert translated_variants("name", [en_de]) == []  # the same word: no change
    with pytest.raises(ValueError, match="one input language"):
        translated_variants("house", [en_de, Lexicon("de", "fr", {})])
