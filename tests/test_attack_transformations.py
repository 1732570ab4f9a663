"""Known-answer tests of the attack transformations: code-mixing on hand-made and dictd lexicons, noise,
phrase extraction on hand-written alignments and phrase mixing on real Bible verses, and masked-LM
substitution on a saved tiny masked LM (and the error where a checkpoint has no LM head)."""

from pathlib import Path

import pytest

from xstilts.config import AttackSpec
from xstilts.errors import XstiltsError
from xstilts.robustness.edits import Edit, apply_edits, replaced_words
from xstilts.robustness.lexicon import Lexicon
from xstilts.robustness.phrases import phrase_pairs
from xstilts.robustness.transformations import (
    TRANSFORMATIONS,
    CodeMixing,
    MaskedLMSubstitution,
    Noise,
    PhraseMixing,
    build_transformation,
    dictd_lexicons,
)
from xstilts.robustness.words import words_of

DICTD = Path(__file__).parent / "fixtures" / "dictd" / "freedict-eng-deu-mini.index"


def test_every_transformation_an_attack_spec_can_name_is_registered():
    from typing import get_args

    assert set(TRANSFORMATIONS) == set(get_args(AttackSpec.model_fields["transformation"].annotation))
    noise = build_transformation(AttackSpec(transformation="noise", noise=["swap"]))
    assert isinstance(noise, Noise) and noise.kinds == ("swap",)
    with pytest.raises(XstiltsError, match="embedded languages"):
        build_transformation(AttackSpec(transformation="code-mixing"))
    with pytest.raises(XstiltsError, match="attacked examples in the embedded languages"):
        build_transformation(AttackSpec(transformation="phrase"), embedded_languages=["en"])
    with pytest.raises(XstiltsError, match="attacked checkpoint"):
        build_transformation(AttackSpec(transformation="mlm"))


def test_code_mixing_offers_each_words_translations_in_every_other_embedded_language():
    lexicons = {
        ("en", "de"): Lexicon("en", "de", {"house": ("haus", "heim"), "old": ("alt",)}),
        ("en", "fr"): Lexicon("en", "fr", {"house": ("maison",), "the": ("la",)}),
    }
    built = []

    def lexicon(lang, other):
        built.append((lang, other))
        return lexicons[(lang, other)]

    mixing = CodeMixing(["de", "en", "fr"], lexicon)  # the input's own language is no embedded one
    examples = [{"id": "1", "a": "The old house.", "b": "A house"}, {"id": "2", "a": "Nothing", "b": ""}]
    found = mixing.candidates(examples, "en", ["a", "b"])
    assert found == [
        [
            Edit("a", 0, 1, "La", "fr"),
            Edit("a", 1, 2, "alt", "de"),
            Edit("a", 2, 3, "haus", "de"),
            Edit("a", 2, 3, "heim", "de"),
            Edit("a", 2, 3, "maison", "fr"),
            Edit("b", 1, 2, "haus", "de"),
            Edit("b", 1, 2, "heim", "de"),
            Edit("b", 1, 2, "maison", "fr"),
        ],
        [],
    ]
    assert apply_edits(examples[0], found[0][:2])["a"] == "La alt house."
    mixing.candidates(examples, "en", ["a"])
    assert built == [("en", "de"), ("en", "fr")]  # each pair's lexicon built once, then kept


def test_dictd_code_mixing_pivots_through_english():
    # One English -> German dictionary stands in for two languages ("de" and "nl") so that a pivot has
    # two different dictionaries to go through: de -> en -> nl maps each German word to the German words
    # of its English senses ("Haus" -> house -> "Haus", "Gebäude"; the word itself is no change).
    spec = AttackSpec(transformation="code-mixing", lexicon="dictd", dictionaries={"de": DICTD, "nl": DICTD})
    mixing = build_transformation(spec, embedded_languages=["de", "nl", "en"])
    example = {"id": "1", "text": "Ein Haus, eine Katze"}
    assert mixing.candidates([example], "de", ["text"]) == [
        [
            Edit("text", 1, 2, "Gebäude", "nl"),
            Edit("text", 1, 2, "House", "en"),
            Edit("text", 3, 4, "Mieze", "nl"),
            Edit("text", 3, 4, "Kater", "nl"),
            Edit("text", 3, 4, "Cat", "en"),
        ]
    ]
    english = mixing.candidates([{"id": "1", "text": "my dog"}], "en", ["text"])  # English: direct
    assert english == [[Edit("text", 1, 2, new, lang) for lang in ("de", "nl") for new in ("Hund", "Rüde")]]


def test_a_language_pair_without_a_lexicon_is_an_error_listing_the_pairs_there_are():
    lexicon = dictd_lexicons({"de": DICTD})
    with pytest.raises(XstiltsError, match=r"no dictd lexicon for fr-de: .*serve: de-en, en-de$"):
        lexicon("fr", "de")
    mixing = build_transformation(AttackSpec(transformation="code-mixing"), embedded_languages=["xx"])
    with pytest.raises(
        XstiltsError, match=r"no Bible lexicon for de-xx: the Bible has no xx; its languages: ar, bn"
    ):
        mixing.candidates([{"id": "1", "text": "Haus"}], "de", ["text"])
    with pytest.raises(XstiltsError, match="other than the input's"):
        mixing.candidates([{"id": "1", "text": "x"}], "xx", ["text"])


def test_noise_edits_every_word_in_the_input_language():
    noise = Noise(["delete", "swap"])
    found = noise.candidates([{"id": "1", "text": "ab word, ok"}], "en", ["text"])
    assert found == [
        [Edit("text", 1, 2, "wrd", "en"), Edit("text", 1, 2, "wod", "en"), Edit("text", 1, 2, "wrod", "en")]
    ]
    with pytest.raises(XstiltsError, match="not a text field"):
        noise.candidates([{"id": "1", "text": "word"}], "en", ["label"])


def test_phrase_extraction_keeps_consistent_tight_phrases():
    # "the old man" <-> "der alte Mann", monotone one-to-one links
    assert phrase_pairs(3, 3, [(0, 0), (1, 1), (2, 2)]) == [
        (0, 1, 0, 1),
        (0, 2, 0, 2),
        (0, 3, 0, 3),
        (1, 2, 1, 2),
        (1, 3, 1, 3),
        (2, 3, 2, 3),
    ]
    assert phrase_pairs(3, 3, [(0, 0), (1, 1), (2, 2)], max_words=2)[-1] == (2, 3, 2, 3)
    assert (0, 3, 0, 3) not in phrase_pairs(3, 3, [(0, 0), (1, 1), (2, 2)], max_words=2)
    # crossing: "a red car" <-> "une voiture rouge": "a red" would need "une voiture rouge", whose
    # "voiture" links outside it, so it is no phrase; "red car" <-> "voiture rouge" is
    crossing = phrase_pairs(3, 3, [(0, 0), (1, 2), (2, 1)])
    assert crossing == [(0, 1, 0, 1), (0, 3, 0, 3), (1, 2, 2, 3), (1, 3, 1, 3), (2, 3, 1, 2)]
    # one-to-many: "went" -> "ist gegangen" (0-0, 0-2 around "er" at 1, linked to "he" at 1): "went" alone
    # spans "ist er gegangen", whose "er" links outside: only "went he" <-> "ist er gegangen" is consistent
    assert phrase_pairs(2, 3, [(0, 0), (0, 2), (1, 1)]) == [(0, 2, 0, 3), (1, 2, 1, 2)]
    # unaligned words are never phrase boundaries: "the" (0) and "ja" (1) have no links
    assert phrase_pairs(2, 3, [(1, 2)]) == [(1, 2, 2, 3)]
    assert phrase_pairs(2, 3, [(0, 0)]) == [(0, 1, 0, 1)]
    # target side longer than max_words: left out
    assert phrase_pairs(1, 5, [(0, 0), (0, 4)]) == []
    with pytest.raises(ValueError, match="outside"):
        phrase_pairs(2, 2, [(0, 2)])


def test_phrase_mixing_swaps_in_aligned_phrases_of_the_same_bible_verses(monkeypatch, tmp_path):
    pytest.importorskip("eflomal")
    from xstilts.io import cache_dir

    bible_index = cache_dir() / "bible"  # the user cache's Bible index, shared; alignments go to tmp_path
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path))
    (tmp_path / "bible").symlink_to(bible_index, target_is_directory=True)
    from xstilts.robustness.lexicon import bible_training_pairs
    from xstilts.tasks import bible

    def parallel(ids, lang):
        by_id = {e["id"]: e for e in bible.build_examples("bible-genre", "test", lang, limit=20)}
        return [by_id[i] for i in ids]

    from xstilts.analysis import word_alignment

    asked, aligned = [], []
    real_align_words = word_alignment.align_words

    def align_words(source, target):  # the real aligner, watched: how many sentences it aligns
        aligned.append(len(source))
        return real_align_words(source, target)

    monkeypatch.setattr(word_alignment, "align_words", align_words)

    def statistics(lang, other):
        asked.append((lang, other))
        return bible_training_pairs(lang, other, verses=150)

    german = bible.build_examples("bible-genre", "test", "de", limit=20)
    mixing = PhraseMixing(["de", "en"], parallel, statistics=statistics)
    found = mixing.candidates(german, "de", ["text"])
    assert asked == [("de", "en")] and aligned == [20 + 150] and len(found) == 20
    # eflomal takes no seed: the links are kept on disk, so a rerun proposes the same phrases, unaligned
    assert mixing.candidates(german, "de", ["text"]) == found and aligned == [20 + 150]
    english = {e["id"]: e["text"] for e in parallel([e["id"] for e in german], "en")}
    multi = 0
    for example, edits in zip(german, found, strict=True):
        assert edits, example["text"]
        keys = [(e.start, e.end) for e in edits]
        assert keys == sorted(keys)  # deterministic order: first word, then last word
        for edit in edits:
            assert edit.language == "en" and edit.field == "text" and 1 <= edit.words <= 3
            assert edit.text in english[example["id"]] and edit.text != replaced_words(example, edit)
            assert 1 <= len(words_of(edit.text)) <= 3
            apply_edits(example, [edit])  # every edit fits its example
        multi += sum(edit.words > 1 for edit in edits)
    assert multi >= 20  # phrases, not only words
    pairs = {
        (replaced_words(example, e), e.text)
        for example, edits in zip(german, found, strict=True)
        for e in edits
    }
    assert ("Gott", "God") in pairs or ("HERRN", "Yahweh") in pairs  # a word pair the Bible never misses
    with pytest.raises(XstiltsError, match="missing 1.2.3"):
        PhraseMixing(["en"], lambda ids, lang: [], statistics=statistics).candidates(
            [{"id": "1.2.3", "text": "x"}], "de", ["text"]
        )


# --------------------------------------------------------------------------- masked-LM substitution


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory):
    """The tiny test model's config and tokenizer with a (random) masked-LM head, saved as a checkpoint."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, XLMRobertaForMaskedLM

    from xstilts.models.loading import resolve_model

    source = resolve_model("tiny-random-xlmr")
    path = tmp_path_factory.mktemp("tiny-mlm")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        XLMRobertaForMaskedLM(AutoConfig.from_pretrained(source)).save_pretrained(str(path))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(path))
    return path


TEXTS = [{"id": "1", "text": "Der alte Mann, und das Haus."}, {"id": "2", "text": "我爱你 Bob"}]


def _word_embedding_cosines(masked_lm, text, start, end, candidates):
    """Cosine of each candidate's token embedding to the word's (mean of its sub-tokens in the text)."""
    import torch

    tokenizer = masked_lm.tokenizer
    encoded = tokenizer(text, return_offsets_mapping=True)
    own = [
        i
        for i, (a, b) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        if a < b and a < end and start < b
    ]
    table = masked_lm.embeddings.detach()
    word = table[own].mean(0)
    # a substitute's embedding is its word-start token's ("▁word"), the bare token only where none exists
    ids = [tokenizer.convert_tokens_to_ids("▁" + c) for c in candidates]
    ids = [
        i if i != tokenizer.unk_token_id else tokenizer.convert_tokens_to_ids(c)
        for i, c in zip(ids, candidates, strict=True)
    ]
    return [float(torch.nn.functional.cosine_similarity(table[i], word, dim=0)) for i in ids]


@pytest.fixture(scope="module")
def substitution(tiny_mlm):
    """The saved tiny masked LM, loaded once (tests set `top_k`, `min_cosine` and `batch_size`)."""
    spec = AttackSpec(transformation="mlm", mlm_candidates=5, mlm_min_embedding_cosine=-1.0)
    built = build_transformation(spec, victim_source=str(tiny_mlm))
    assert isinstance(built, MaskedLMSubstitution) and (built.top_k, built.min_cosine) == (5, -1.0)
    return built


def test_masked_lm_substitutes_are_the_top_whole_words_in_context(substitution):
    import regex

    substitution.top_k, substitution.min_cosine, substitution.batch_size = 5, -1.0, 64
    found = substitution.candidates(TEXTS, "de", ["text"])
    assert [len(edits) for edits in found] == [6 * 5, 4 * 5]  # every word its 5 best, none filtered
    tokenizer = substitution.masked_lm.tokenizer
    for example, edits in zip(TEXTS, found, strict=True):
        for edit in edits:
            assert edit.words == 1 and edit.language == "de"
            assert words_of(edit.text) == [edit.text]  # one word ...
            starts_a_word = tokenizer.convert_tokens_to_ids("▁" + edit.text) != tokenizer.unk_token_id
            assert starts_a_word or regex.fullmatch(
                r"\p{Han}|\p{Hiragana}|\p{Katakana}", edit.text
            )  # ... whole
            assert edit.text.lower() != replaced_words(example, edit).lower()  # never the word itself
    # the word itself is never its own substitute: written in place of "alte", the first choice for "alte"
    # (the masked text is the same) gives way to the next ones
    best = [e.text for e in found[0] if e.start == 1]
    itself = {"id": "3", "text": f"Der {best[0]} Mann, und das Haus."}
    assert [e.text for e in substitution.candidates([itself], "de", ["text"])[0] if e.start == 1][:4] == best[
        1:
    ]
    # dynamic padding changes nothing: one at a time gives the same candidates, in the same order
    # (20 candidates a word: their order turns on small differences in the scores)
    substitution.top_k, substitution.batch_size = 20, 64
    batched = substitution.candidates(TEXTS, "de", ["text"])
    substitution.batch_size = 1
    assert substitution.candidates(TEXTS, "de", ["text"]) == batched


def test_the_embedding_cosine_filter_drops_dissimilar_substitutes(substitution):
    from xstilts.robustness.words import word_spans

    substitution.top_k, substitution.min_cosine, substitution.batch_size = 5, -1.0, 64
    unfiltered = substitution.candidates(TEXTS[:1], "de", ["text"])[0]
    substitution.min_cosine = 0.1
    filtered = substitution.candidates(TEXTS[:1], "de", ["text"])[0]
    text = TEXTS[0]["text"]
    expected = []
    for index, (start, end) in enumerate(word_spans(text)):
        mine = [e.text for e in unfiltered if e.start == index]
        cosines = _word_embedding_cosines(substitution.masked_lm, text, start, end, mine)
        expected += [
            Edit("text", index, index + 1, t, "de") for t, c in zip(mine, cosines, strict=True) if c >= 0.1
        ]
    assert filtered == expected and 0 < len(filtered) < len(unfiltered)


def test_a_checkpoint_without_a_masked_lm_head_is_an_error(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from xstilts.models.checkpoint import build_model, save_checkpoint
    from xstilts.models.heads import HeadSpec
    from xstilts.models.loading import resolve_model

    source = resolve_model("tiny-random-xlmr")
    AutoModel.from_pretrained(source).save_pretrained(str(tmp_path / "bare"))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(tmp_path / "bare"))
    with pytest.raises(
        XstiltsError, match=r"bare has no masked-LM head: its weights lack lm_head\..*xlm-roberta-large"
    ):
        build_transformation(AttackSpec(transformation="mlm"), victim_source=str(tmp_path / "bare"))

    model, tokenizer, _ = build_model("tiny-random-xlmr", {"genre": 8})
    save_checkpoint(model, tokenizer, tmp_path / "target", {"phase": "target"})
    with pytest.raises(
        XstiltsError, match=r"no masked-LM head: the xstilts checkpoint's heads are genre \(sequence\)"
    ):
        MaskedLMSubstitution(tmp_path / "target")
    # an xstilts checkpoint that keeps its MLM head (the MLM baseline) is usable
    vocabulary = model.encoder.get_input_embeddings().weight.shape[0]
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"mlm": HeadSpec(vocabulary, "mlm")})
    save_checkpoint(model, tokenizer, tmp_path / "mlm", {"phase": "intermediate"})
    found = MaskedLMSubstitution(tmp_path / "mlm", top_k=2, min_cosine=-1.0).candidates(
        TEXTS[1:], "zh", ["text"]
    )
    assert len(found[0]) == 4 * 2
