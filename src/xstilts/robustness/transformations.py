"""The attack transformations: what each attack may change, as candidate edits for a search.

- `CodeMixing` (PolyGloss-like): a word -> its translations in the embedded languages (bilingual lexicons);
- `PhraseMixing` (Bumblebee-like): a phrase -> the aligned phrase of the same example in another language;
- `Noise`: a word -> character-noise variants of itself;
- `MaskedLMSubstitution`: a word -> what a masked LM predicts in its place, in the input's own language.

Each implements `edits.Transformation`; `build_transformation` makes the one an `AttackSpec` names.
Stop words and the word budget are the search's business: transformations propose on every word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from xstilts.config import AttackSpec
from xstilts.errors import XstiltsError
from xstilts.robustness.edits import Edit, Transformation
from xstilts.robustness.lexicon import (
    Lexicon,
    bible_lexicon,
    bible_training_pairs,
    compose,
    dictd_lexicon,
    invert,
)
from xstilts.robustness.words import word_spans

# (example ids, language) -> those examples in that language, in the order given (the same fields)
ParallelVersions = Callable[[Sequence[str], str], list[dict]]
# (language, other language) -> parallel sentences (texts, their translations) for alignment statistics
ParallelSentences = Callable[[str, str], tuple[list[str], list[str]]]


def _texts(examples: Sequence[dict], field: str) -> list[str]:
    texts = [example.get(field) for example in examples]
    if any(not isinstance(text, str) for text in texts):
        raise XstiltsError(f"cannot attack field {field!r}: not a text field of every example")
    return texts


def _others(embedded_languages: Sequence[str], lang: str, what: str) -> list[str]:
    others = [other for other in dict.fromkeys(embedded_languages) if other != lang]
    if not others:
        raise XstiltsError(f"{what} needs an embedded language other than the input's ({lang})")
    return others


class CodeMixing:
    """Word translation into the embedded languages; `lexicon(lang, other)` gives a pair's lexicon (built
    once per pair and kept: `bible_lexicons` or `dictd_lexicons`, or any function for hand-made ones)."""

    name = "code-mixing"
    per_checkpoint = False  # the same candidates for every attacked checkpoint

    def __init__(self, embedded_languages: Sequence[str], lexicon: Callable[[str, str], Lexicon]):
        self.embedded_languages = list(embedded_languages)
        self._lexicon = lexicon
        self._built: dict[tuple[str, str], Lexicon] = {}

    def lexicons(self, lang: str) -> list[Lexicon]:
        for other in _others(self.embedded_languages, lang, "code-mixing"):
            if (lang, other) not in self._built:
                self._built[(lang, other)] = self._lexicon(lang, other)
        return [self._built[(lang, other)] for other in _others(self.embedded_languages, lang, "code-mixing")]

    def candidates(self, examples: Sequence[dict], lang: str, fields: Sequence[str]) -> list[list[Edit]]:
        from xstilts.robustness.code_mixing import translated_variants

        lexicons = self.lexicons(lang)
        return _per_word(
            examples,
            fields,
            lambda word: [(sub.text, sub.language) for sub in translated_variants(word, lexicons)],
        )


def _per_word(examples, fields, variants: Callable[[str], list[tuple[str, str]]]) -> list[list[Edit]]:
    """One-word edits: `variants(word)` -> (replacement, its language) for every word of every field."""
    out: list[list[Edit]] = [[] for _ in examples]
    for field in fields:
        for edits, text in zip(out, _texts(examples, field), strict=True):
            for index, (start, end) in enumerate(word_spans(text)):
                edits += [
                    Edit(field, index, index + 1, new, language)
                    for new, language in variants(text[start:end])
                ]
    return out


def bible_lexicons(*, verses: int = 3000, benchmark_seed: int = 0) -> Callable[[str, str], Lexicon]:
    """Lexicons induced from parallel Bible verses (`lexicon.bible_lexicon`), for any two of its languages."""
    from xstilts.tasks.bible import BIBLE_LANGUAGES

    def build(lang: str, other: str) -> Lexicon:
        unknown = [code for code in (lang, other) if code not in BIBLE_LANGUAGES]
        if unknown:
            raise XstiltsError(
                f"no Bible lexicon for {lang}-{other}: the Bible has no {', '.join(unknown)}; its languages: "
                f"{', '.join(BIBLE_LANGUAGES)} (or use lexicon: dictd with dictionaries)"
            )
        return bible_lexicon(lang, other, verses=verses, benchmark_seed=benchmark_seed)

    return build


def dictd_lexicons(dictionaries: dict[str, Path]) -> Callable[[str, str], Lexicon]:
    """Lexicons from dictd dictionaries English -> x (`dictionaries[x]` is its .index file), pivoting
    through English where neither language is English (xx -> en -> yy, as PolyGloss does)."""
    loaded: dict[str, Lexicon] = {}

    def english_to(code: str) -> Lexicon:
        if code not in loaded:
            loaded[code] = dictd_lexicon(dictionaries[code], code)
        return loaded[code]

    def build(lang: str, other: str) -> Lexicon:
        served = {"en", *dictionaries}
        if lang not in served or other not in served:
            languages = sorted(served)
            pairs = [f"{a}-{b}" for a in languages for b in languages if a != b]
            raise XstiltsError(
                f"no dictd lexicon for {lang}-{other}: dictionaries are given for "
                f"{', '.join(sorted(dictionaries)) or 'no language'} (English -> each); "
                f"the pairs they serve: {', '.join(pairs) or 'none'}"
            )
        if lang == "en":
            return english_to(other)
        if other == "en":
            return invert(english_to(lang))
        return compose(invert(english_to(lang)), english_to(other))

    return build


class Noise:
    """Character noise of each word (`noise.noisy_variants`), in the input's own language."""

    name = "noise"
    per_checkpoint = False  # the same candidates for every attacked checkpoint

    def __init__(self, kinds: Sequence[str]):
        self.kinds = tuple(kinds)

    def candidates(self, examples: Sequence[dict], lang: str, fields: Sequence[str]) -> list[list[Edit]]:
        from xstilts.robustness.noise import noisy_variants

        return _per_word(
            examples, fields, lambda word: [(new, lang) for new in noisy_variants(word, self.kinds)]
        )


class PhraseMixing:
    """Phrases of the same example in other languages, swapped in (Bumblebee-like).

    For each embedded language, `parallel(ids, other)` gives the examples' own versions; each attacked
    field is word-aligned to its version (eflomal, intersected links) together with `statistics(lang,
    other)`'s parallel sentences (eflomal needs a corpus, not a handful of sentences), and every consistent
    phrase pair of up to `max_phrase_words` words a side (`phrases.phrase_pairs`, single words included)
    is a candidate: the source words -> the target words as written in the version (with whatever stands
    between them), tagged with the version's language. A phrase identical to the words it replaces is no
    change and is left out. Candidates come in order of field, first word, last word, then language.

    Simplified compared with Bumblebee (Tan & Joty 2021): links come from eflomal with corpus statistics
    instead of SimAlign's XLM-R embeddings; spans are tight (NLTK's extraction it uses also grows phrases
    over unaligned boundary words) and at most 3 words (it allows 4); no equivalence constraint between
    successive swaps and no transliteration (a search may add constraints over the candidates); versions
    are the dataset's own translations, never machine translations made on the fly.
    """

    name = "phrase"
    per_checkpoint = False  # the same candidates for every attacked checkpoint

    def __init__(
        self,
        embedded_languages: Sequence[str],
        parallel: ParallelVersions,
        *,
        statistics: ParallelSentences | None = None,
        max_phrase_words: int = 3,
    ):
        if max_phrase_words < 1:
            raise XstiltsError(f"max_phrase_words must be at least 1, got {max_phrase_words}")
        self.embedded_languages = list(embedded_languages)
        self.parallel = parallel
        self.statistics = statistics if statistics is not None else bible_training_pairs
        self.max_phrase_words = max_phrase_words

    def _versions(self, examples: Sequence[dict], other: str) -> list[dict]:
        ids = [str(example["id"]) for example in examples]
        versions = self.parallel(ids, other)
        found = [str(version.get("id")) for version in versions]
        if found != ids:
            missing = [i for i in ids if i not in set(found)]
            raise XstiltsError(
                f"phrase mixing needs every attacked example in {other}, matched by id; "
                + (f"missing {', '.join(missing[:5])}" if missing else "got them in another order")
            )
        return versions

    def candidates(self, examples: Sequence[dict], lang: str, fields: Sequence[str]) -> list[list[Edit]]:
        from xstilts.robustness.phrases import phrase_pairs

        found: dict[tuple[int, int, int, int], list[Edit]] = {}  # (example, field, start, end) -> edits
        others = _others(self.embedded_languages, lang, "phrase mixing")
        for other in others:
            versions = self._versions(examples, other)
            sources = [text for field in fields for text in _texts(examples, field)]
            targets = [text for field in fields for text in _texts(versions, field)]
            extra_sources, extra_targets = self.statistics(lang, other)
            source_spans = [word_spans(text) for text in sources]
            target_spans = [word_spans(text) for text in targets]
            links = cached_alignment(
                [_lowered(text, spans) for text, spans in zip(sources, source_spans, strict=True)]
                + [_lowered(text, word_spans(text)) for text in extra_sources],
                [_lowered(text, spans) for text, spans in zip(targets, target_spans, strict=True)]
                + [_lowered(text, word_spans(text)) for text in extra_targets],
            )
            for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
                field, example = divmod(row, len(examples))
                s_spans, t_spans = source_spans[row], target_spans[row]
                pairs = phrase_pairs(len(s_spans), len(t_spans), links[row], max_words=self.max_phrase_words)
                for start, end, low, high in pairs:
                    text = target[t_spans[low][0] : t_spans[high - 1][1]]
                    if text != source[s_spans[start][0] : s_spans[end - 1][1]]:
                        edit = Edit(fields[field], start, end, text, other)
                        found.setdefault((example, field, start, end), []).append(edit)
        out: list[list[Edit]] = [[] for _ in examples]
        for key in sorted(found):
            out[key[0]] += list(dict.fromkeys(found[key]))
        return out


def cached_alignment(source_words: list[list[str]], target_words: list[list[str]]) -> list[set]:
    """eflomal links of these sentence pairs, kept on disk by their content: eflomal's sampler takes no
    seed, so the cache is what makes a rerun propose the same phrases (as `bible_lexicon` does for words)."""
    import hashlib
    import json

    from xstilts.analysis import word_alignment
    from xstilts.io import atomic_file, cache_dir

    payload = json.dumps([source_words, target_words], ensure_ascii=False).encode()
    path = cache_dir() / "alignments" / f"{hashlib.sha256(payload).hexdigest()[:24]}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if len(found) == len(source_words):
            return [{tuple(link) for link in links} for links in found]
    except (OSError, ValueError, TypeError):
        pass  # not aligned yet, or damaged: aligned (again)
    links = word_alignment.align_words(source_words, target_words)
    with atomic_file(path) as handle:
        json.dump([sorted(found) for found in links], handle)
    return links


def _lowered(text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """The aligner's words, numbered as `word_spans` numbers them (`tokenize_words` would agree but for
    the rare letter whose lower case is longer)."""
    return [text[start:end].lower() for start, end in spans]


class MaskedLMSubstitution:
    """What a masked LM predicts for each word in context (`masked_lm.substitutes`), in the input's own
    language: the top `top_k` whole words whose input embedding is within `min_cosine` of the word's."""

    name = "mlm"
    per_checkpoint = True  # candidates come from the attacked checkpoint's own masked LM

    def __init__(
        self,
        source: str | Path,
        *,
        top_k: int = 8,
        min_cosine: float = 0.3,
        device: str = "cpu",
        batch_size: int = 64,
    ):
        from xstilts.robustness.masked_lm import load_masked_lm

        self.masked_lm = load_masked_lm(
            source, device=device
        )  # no LM head: the error comes before any attack
        self.top_k, self.min_cosine, self.batch_size = top_k, min_cosine, batch_size

    def candidates(self, examples: Sequence[dict], lang: str, fields: Sequence[str]) -> list[list[Edit]]:
        from xstilts.robustness.masked_lm import substitutes

        out: list[list[Edit]] = [[] for _ in examples]
        for field in fields:
            texts = _texts(examples, field)
            spans = [word_spans(text) for text in texts]
            found = substitutes(
                self.masked_lm,
                texts,
                spans,
                top_k=self.top_k,
                min_cosine=self.min_cosine,
                batch_size=self.batch_size,
            )
            for edits, words in zip(out, found, strict=True):
                edits += [Edit(field, i, i + 1, new, lang) for i in sorted(words) for new in words[i]]
        return out


TRANSFORMATIONS: dict[str, type] = {
    CodeMixing.name: CodeMixing,
    PhraseMixing.name: PhraseMixing,
    Noise.name: Noise,
    MaskedLMSubstitution.name: MaskedLMSubstitution,
}


def build_transformation(
    spec: AttackSpec,
    *,
    embedded_languages: Sequence[str] = (),
    victim_source: str | Path | None = None,
    parallel: ParallelVersions | None = None,
    statistics: ParallelSentences | None = None,
    device: str = "cpu",
    batch_size: int = 64,
) -> Transformation:
    """The transformation `spec` names. `embedded_languages`: the languages mixed in (code-mixing, phrase;
    the runner resolves the spec's default); `victim_source`: the attacked checkpoint (mlm: its LM head,
    its tokenizer); `parallel`: the attacked examples in other languages (phrase); `statistics`: extra
    parallel sentences per language pair for phrase alignment (default: Bible training verses)."""
    chosen = spec.transformation
    if chosen not in TRANSFORMATIONS:
        raise XstiltsError(f"unknown transformation {chosen!r}; valid: {', '.join(TRANSFORMATIONS)}")
    if TRANSFORMATIONS[chosen] is Noise:
        return Noise(spec.noise)
    if TRANSFORMATIONS[chosen] is MaskedLMSubstitution:
        if victim_source is None:
            raise XstiltsError("the mlm transformation needs the attacked checkpoint (its masked-LM head)")
        return MaskedLMSubstitution(
            victim_source,
            top_k=spec.mlm_candidates,
            min_cosine=spec.mlm_min_embedding_cosine,
            device=device,
            batch_size=batch_size,
        )
    if not embedded_languages:
        raise XstiltsError(f"the {chosen} transformation needs embedded languages to mix in")
    if TRANSFORMATIONS[chosen] is CodeMixing:
        bible = bible_lexicons(verses=spec.alignment_verses)
        lexicon = dictd_lexicons(spec.dictionaries) if spec.lexicon == "dictd" else bible
        return CodeMixing(embedded_languages, lexicon)
    if parallel is None:
        raise XstiltsError("the phrase transformation needs the attacked examples in the embedded languages")
    if statistics is None:

        def statistics(lang: str, other: str) -> tuple[list[str], list[str]]:
            return bible_training_pairs(lang, other, verses=spec.alignment_verses)

    return PhraseMixing(embedded_languages, parallel, statistics=statistics)
