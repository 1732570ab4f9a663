"""Known-answer tests of the data strategies (robustness.augment): code-mixed and smoothing copies of
training examples through hand-made lexicons, and the dictd path from a config."""

import random
from pathlib import Path

import pytest

from xstilts.config import CodeMixedConfig, FGMConfig, SmoothingConfig
from xstilts.errors import XstiltsError
from xstilts.robustness.augment import (
    CodeMixedAugmentation,
    SmoothingAugmentation,
    augment_training_examples,
    augmentation_for,
)
from xstilts.robustness.lexicon import Lexicon
from xstilts.tasks.kinds import get_kind

DICTD = Path(__file__).parent / "fixtures" / "dictd" / "freedict-eng-deu-mini.index"

LEXICONS = {
    # "the" is an English stop word with a translation: never replaced
    ("en", "de"): Lexicon(
        "en",
        "de",
        {
            "the": ("das",),
            "cat": ("Katze",),
            "dog": ("Hund",),
            "house": ("Haus", "Gebäude"),
            "hotel": ("Hotel",),
        },
    ),
    ("de", "en"): Lexicon(
        "de", "en", {"haus": ("house", "home"), "gebäude": ("building",), "hotel": ("hotel",)}
    ),
    ("en", "fr"): Lexicon("en", "fr", {"cat": ("chat",), "river": ("cours d'eau",), "tree": ("arbre",)}),
    ("fr", "en"): Lexicon("fr", "en", {"chat": ("cat",)}),
}


def lexicon(lang, other):
    if (lang, other) not in LEXICONS:
        raise XstiltsError(f"no lexicon for {lang}-{other}")
    return LEXICONS[(lang, other)]


def refuse(lang, other):
    raise AssertionError("no lexicon should be built")


def mixed(languages=("de",), sentence=1.0, word=1.0):
    return CodeMixedAugmentation(list(languages), sentence, word, lexicon)


def test_every_translatable_non_stop_word_is_replaced_keeping_case_punctuation_and_other_keys():
    examples = [
        {"id": "a", "text": "The Cat, the DOG (and a hotel)!", "label": 2},
        {"id": "b", "text": "Nothing to translate here.", "label": 0},  # no change: no copy
    ]
    out = mixed().augment(examples, ["text"])
    assert out[:2] == examples and out[0] is examples[0]
    assert out[2:] == [{"id": "a#cm1", "text": "The Katze, the HUND (and a Hotel)!", "label": 2}]
    assert examples[0]["text"] == "The Cat, the DOG (and a hotel)!"  # the original is left as it was


def test_nothing_changes_at_probability_zero_and_no_lexicon_is_built():
    examples = [{"id": str(i), "text": "the cat and the dog"} for i in range(20)]
    for sentence, word in [(0.0, 1.0), (1.0, 0.0)]:
        augmentation = CodeMixedAugmentation(["de"], sentence, word, refuse)
        assert augmentation.augment(examples, ["text"]) == examples
    assert SmoothingAugmentation(["de"], 0, 1.0, refuse).augment(examples, ["text"]) == examples


def test_copies_come_at_the_sentence_probability_and_words_at_the_word_probability():
    examples = [{"id": str(i), "text": "cat dog " * 5} for i in range(400)]
    copies = mixed(sentence=0.25).copies(examples, ["text"], seed=3).examples
    assert 70 <= len(copies) <= 130  # binomial(400, 0.25): mean 100, sd 8.7
    found = mixed(sentence=1.0, word=0.5).copies(examples, ["text"], seed=3)
    assert 0.45 < found.substituted / found.words < 0.55


def test_seeded_by_its_own_generator_only():
    examples = [{"id": str(i), "text": "house cat dog house cat dog"} for i in range(30)]
    augmentation = CodeMixedAugmentation(["de", "fr"], 0.5, 0.5, lexicon)
    state = random.getstate()
    first = augmentation.augment(examples, ["text"], seed=1)
    assert random.getstate() == state  # the global generator is never drawn from
    random.seed(12345)
    assert augmentation.augment(examples, ["text"], seed=1) == first
    assert augmentation.augment(examples, ["text"], seed=2) != first


def test_each_word_takes_a_language_that_translates_it_and_the_input_language_is_not_embedded():
    examples = [{"id": str(i), "text": "cat dog tree"} for i in range(40)]
    built = []
    augmentation = CodeMixedAugmentation(
        ["en", "de", "fr"], 1.0, 1.0, lambda lang, other: built.append((lang, other)) or lexicon(lang, other)
    )
    copies = augmentation.copies(examples, ["text"]).examples  # "en" is the input: left out
    augmentation.copies(examples, ["text"], seed=1)
    assert built == [("en", "de"), ("en", "fr")]  # each pair's lexicon built once, then kept
    texts = [copy["text"] for copy in copies]
    assert len(texts) == 40
    assert {text.split()[0] for text in texts} == {"Katze", "chat"}  # both languages drawn
    assert all(text.split()[1:] == ["Hund", "arbre"] for text in texts)  # the one language that has it
    with pytest.raises(XstiltsError, match=r"code-mixed needs a language other than the input's \(en\)"):
        mixed(["en"]).augment(examples, ["text"])


def test_a_list_of_words_keeps_its_tags_aligned_and_takes_one_word_substitutes_only():
    sentence = {"id": "s", "tokens": ["The", "Cat", "crossed", "the", "river", "."], "tags": list("OBOOBO")}
    out = mixed(["fr"]).augment([sentence], ["tokens"])
    assert out[1] == {
        "id": "s#cm1",
        "tokens": ["The", "Chat", "crossed", "the", "river", "."],  # "cours d'eau" would add a word
        "tags": list("OBOOBO"),
    }
    assert len(out[1]["tokens"]) == len(out[1]["tags"])
    text = mixed(["fr"]).augment([{"text": "The Cat crossed the river."}], ["text"])
    assert text[1] == {"text": "The Chat crossed the cours d'eau."}  # a text takes phrases; no id, none added
    assert mixed(["fr"]).augment([{"tokens": ["river"]}], ["tokens"]) == [{"tokens": ["river"]}]


def test_span_qa_changes_the_question_only_so_the_answers_stay_valid():
    example = {
        "id": "q",
        "question": "Where is the cat?",
        "context": "The cat is in the house.",
        "answers": [{"text": "house", "answer_start": 18}],
    }
    out = mixed().augment([example], get_kind("span_qa").substitution_fields)
    assert out[1] == example | {"id": "q#cm1", "question": "Where is the Katze?"}
    with pytest.raises(
        XstiltsError, match="cannot substitute words of field 'text': .* got NoneType in example q"
    ):
        mixed().augment([example], ["text"])


def test_smoothing_neighbours_are_translations_and_round_trip_synonyms_never_the_word():
    neighbours = SmoothingAugmentation(["de", "en"], 1, 1.0, lexicon).neighbours("en")
    assert neighbours("house") == ["Haus", "Gebäude", "home", "building"]  # house -> Haus -> house: left out
    assert neighbours("House") == ["Haus", "Gebäude", "Home", "Building"]
    assert neighbours("hotel") == []  # "Hotel" is the word itself in another case
    examples = [{"id": "x", "text": "The house.", "label": 1}, {"id": "y", "text": "A hotel."}]
    out = SmoothingAugmentation(["de"], 3, 1.0, lexicon).augment(examples, ["text"], seed=5)
    assert out[:2] == examples and [copy["id"] for copy in out[2:]] == ["x#rs1", "x#rs2", "x#rs3"]
    assert {copy["text"] for copy in out[2:]} <= {"The Haus.", "The Gebäude.", "The home.", "The building."}
    assert all(copy["label"] == 1 for copy in out[2:])


def test_kinds_without_substitution_fields_and_unserved_language_pairs_are_errors():
    config = CodeMixedConfig(strategy="code-mixed", embedded_languages=["de"], lexicon="dictd")
    with pytest.raises(
        XstiltsError,
        match=r"code-mixed strategy cannot train retrieval tasks: .*it serves classification, "
        r"pair_classification, multiple_choice, span_qa, tagging, ranking$",
    ):
        augment_training_examples([{"text": "x"}], get_kind("retrieval"), config, lang="en", seed=0)
    with pytest.raises(XstiltsError, match="no lexicon for en-xx"):
        mixed(["xx"]).augment([{"text": "cat"}], ["text"])
    unserved = config.model_copy(update={"embedded_languages": ["fr"], "dictionaries": {"de": DICTD}})
    with pytest.raises(XstiltsError, match="no dictd lexicon for en-fr"):
        augment_training_examples([{"text": "cat"}], get_kind("classification"), unserved, lang="en", seed=0)
    bible = CodeMixedConfig(strategy="code-mixed", embedded_languages=["xx"])
    with pytest.raises(XstiltsError, match="no Bible lexicon for en-xx"):
        augmentation_for(bible).augment([{"text": "cat"}], ["text"])
    with pytest.raises(XstiltsError, match="'fgm' is not a data strategy"):
        augmentation_for(FGMConfig(strategy="fgm"))


def test_configs_with_dictd_dictionaries_build_the_augmentations():
    config = CodeMixedConfig(
        strategy="code-mixed",
        embedded_languages=["de"],
        sentence_probability=1,
        word_probability=1,
        lexicon="dictd",
        dictionaries={"de": DICTD},
    )
    examples = [{"id": "1", "text": "My dog and the house.", "label": 0}]
    out, note = augment_training_examples(examples, get_kind("classification"), config, lang="en", seed=0)
    assert out[0] == examples[0] and len(out) == 2
    dog, house = out[1]["text"].split()[1], out[1]["text"].split()[4].rstrip(".")
    assert dog in {"Hund", "Rüde"} and house in {"Haus", "Gebäude"}
    assert note == "code-mixed: 1 copies of 1 examples (en -> de), 40% of their words substituted"
    smoothing = SmoothingConfig(
        strategy="smoothing",
        languages=["de"],
        copies=2,
        word_probability=1,
        lexicon="dictd",
        dictionaries={"de": DICTD},
    )
    augmentation = augmentation_for(smoothing)
    assert isinstance(augmentation, SmoothingAugmentation) and augmentation.copies_per_example == 2
    assert augmentation.neighbours("en")("cat") == [
        "Katze",
        "Mieze",
        "Kater",
    ]  # cat -> Katze -> cat: left out
    pair = [{"text_a": "a cat", "text_b": "a dog", "label": 1}]
    out, note = augment_training_examples(pair, get_kind("pair_classification"), smoothing, lang="en", seed=0)
    assert len(out) == 3 and all(copy["text_a"] != "a cat" and copy["text_b"] != "a dog" for copy in out[1:])
    assert note == (
        "smoothing: 2 copies of 1 examples (up to 2 per example, neighbours via de), "
        "50% of their words substituted"
    )
