"""Data-level robust training (issue 13): copies of the English training examples with words substituted
through bilingual lexicons, trained on beside the originals. No model is queried, so a copy costs what
any training example costs.

- `CodeMixedAugmentation`: code-mixed adversarial training (CAT; Tan & Joty 2021, "Code-Mixing on Sesame
  Street: Dawn of the Adversarial Polyglots", NAACL). An example gets a copy with probability
  `sentence_probability`; in it each word is translated with probability `word_probability` into an
  embedded language drawn at random: random code-mixing, not the attacks' search.
- `SmoothingAugmentation`: randomised smoothing by substitution as data augmentation (Robust-XLT; Huang et
  al. 2021, "Improving Zero-Shot Cross-Lingual Transfer Learning via Robust Training", EMNLP). `copies`
  noisy copies of each example, each word replaced with probability `word_probability` by a random
  neighbour: its translations into `languages` and its round-trip synonyms (en -> xx -> en).

Shared rules: stop words of the input language are never replaced (as the attacks leave them); a copy in
which no word changed is dropped (it would only count its example twice); a copy keeps every key of its
example (labels, answers, tags) but the substituted fields, and gets the id `{id}#cm1` / `{id}#rs{k}`. A
text field may take multi-word translations; a list of words (tagging's tokens) is substituted item by
item with one-word substitutes only, so its tags stay aligned. Each call draws from its own
`random.Random(seed)`: the global generators the training loop relies on are never touched.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xstilts.config import CodeMixedConfig, SmoothingConfig
from xstilts.errors import XstiltsError
from xstilts.robustness.code_mixing import translated_variants
from xstilts.robustness.lexicon import Lexicon, compose
from xstilts.robustness.stopwords import stop_words
from xstilts.robustness.words import replace_words, word_spans

LexiconSource = Callable[[str, str], Lexicon]  # (language, other language) -> their lexicon


@dataclass(frozen=True)
class Copies:
    """The copies made (in example order) and the words of their substituted fields, changed or not."""

    examples: list[dict]
    words: int
    substituted: int


class _Substitution:
    """Word substitution into copies of examples; a subclass gives each word's substitutes, in groups
    (one group drawn uniformly, then one substitute of it)."""

    name = ""
    tag = ""  # id suffix of a copy
    copies_per_example = 1
    sentence_probability = 1.0

    def __init__(self, languages: Sequence[str], word_probability: float, lexicon: LexiconSource):
        self.languages = list(languages)
        self.word_probability = word_probability
        self._lexicon = lexicon
        self._built: dict[tuple[str, str], Lexicon] = {}

    def _pair(self, lang: str, other: str) -> Lexicon:
        if (lang, other) not in self._built:
            self._built[(lang, other)] = self._lexicon(lang, other)
        return self._built[(lang, other)]

    def others(self, lang: str) -> list[str]:
        """The languages substitutes come from: those given, less the input's own."""
        others = [other for other in dict.fromkeys(self.languages) if other != lang]
        if not others:
            raise XstiltsError(
                f"{self.name} needs a language other than the input's ({lang}) to substitute from"
            )
        return others

    def _groups(self, lang: str) -> Callable[[str], list[list[str]]]:
        raise NotImplementedError

    def copies(
        self, examples: Sequence[dict], fields: Sequence[str], lang: str = "en", seed: int = 0
    ) -> Copies:
        """The changed copies of `examples` (see the module's rules)."""
        if not self.copies_per_example or not self.sentence_probability or not self.word_probability:
            return Copies([], 0, 0)  # plain training: no lexicon is built
        groups, stops, rng = self._groups(lang), stop_words(lang), random.Random(seed)
        found: dict[tuple[str, bool], list[list[str]]] = {}

        def substitute(word: str, one_word: bool) -> str | None:
            if word.lower() in stops:
                return None
            if (word, one_word) not in found:
                options = groups(word)
                if one_word:
                    options = [
                        [new for new in group if not any(c.isspace() for c in new)] for group in options
                    ]
                found[(word, one_word)] = [group for group in options if group]
            options = found[(word, one_word)]
            if not options or rng.random() >= self.word_probability:
                return None
            return rng.choice(rng.choice(options))

        out, words, substituted = [], 0, 0
        for example in examples:
            for k in range(1, self.copies_per_example + 1):
                if rng.random() >= self.sentence_probability:
                    continue
                changed, copy_words = {}, 0
                for field in fields:
                    changed[field], n_words, n_new = _substituted(example, field, substitute)
                    copy_words += n_words
                    if not n_new:
                        del changed[field]
                    substituted += n_new
                if changed:
                    copy = example | changed
                    if "id" in example:
                        copy["id"] = f"{example['id']}#{self.tag}{k}"
                    out.append(copy)
                    words += copy_words
        return Copies(out, words, substituted)

    def augment(
        self, examples: Sequence[dict], fields: Sequence[str], lang: str = "en", seed: int = 0
    ) -> list[dict]:
        """`examples` as given, then their changed copies."""
        return list(examples) + self.copies(examples, fields, lang, seed).examples

    def describe(self, copies: Copies, examples: int, lang: str) -> str:
        share = copies.substituted / copies.words if copies.words else 0.0
        return (
            f"{self.name}: {len(copies.examples)} copies of {examples} examples ({self._how(lang)}), "
            f"{share:.0%} of their words substituted"
        )

    def _how(self, lang: str) -> str:
        return f"{lang} -> {', '.join(other for other in self.languages if other != lang)}"


def _substituted(example: dict, field: str, substitute: Callable[[str, bool], str | None]):
    """(the field with words substituted, its words, how many changed)."""
    value = example.get(field)
    if isinstance(value, str):
        spans = word_spans(value)
        new = {i: substitute(value[start:end], False) for i, (start, end) in enumerate(spans)}
        new = {i: word for i, word in new.items() if word is not None}
        return replace_words(value, new), len(spans), len(new)
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        new = [substitute(word, True) for word in value]
        return (
            [w if n is None else n for w, n in zip(value, new, strict=True)],
            len(value),
            sum(n is not None for n in new),
        )
    raise XstiltsError(
        f"cannot substitute words of field {field!r}: it must be a text or a list of words, got "
        f"{type(value).__name__} in example {example.get('id', '?')}"
    )


class CodeMixedAugmentation(_Substitution):
    """CAT-like code-mixed copies: a word's substitute comes from one embedded language, drawn uniformly
    among those whose lexicon translates it, then one of its translations there, uniformly."""

    name = "code-mixed"
    tag = "cm"

    def __init__(
        self,
        embedded_languages: Sequence[str],
        sentence_probability: float,
        word_probability: float,
        lexicon: LexiconSource,
    ):
        super().__init__(embedded_languages, word_probability, lexicon)
        self.sentence_probability = sentence_probability

    def _groups(self, lang: str) -> Callable[[str], list[list[str]]]:
        lexicons = [self._pair(lang, other) for other in self.others(lang)]
        return lambda word: [[sub.text for sub in translated_variants(word, [lex])] for lex in lexicons]


class SmoothingAugmentation(_Substitution):
    """Robust-XLT-like noisy copies: a word's substitute drawn uniformly from its neighbours
    (`neighbours`)."""

    name = "smoothing"
    tag = "rs"

    def __init__(
        self, languages: Sequence[str], copies: int, word_probability: float, lexicon: LexiconSource
    ):
        super().__init__(languages, word_probability, lexicon)
        self.copies_per_example = copies

    def neighbours(self, lang: str) -> Callable[[str], list[str]]:
        """word -> its translations into each language, then its round-trip synonyms (lang -> xx ->
        lang through the same lexicons), without repeats and never the word itself (in any case)."""
        others = self.others(lang)
        lexicons = [self._pair(lang, other) for other in others]
        lexicons += [compose(self._pair(lang, other), self._pair(other, lang)) for other in others]

        def found(word: str) -> list[str]:
            texts = dict.fromkeys(sub.text for sub in translated_variants(word, lexicons))
            return [text for text in texts if text.casefold() != word.casefold()]

        return found

    def _groups(self, lang: str) -> Callable[[str], list[list[str]]]:
        neighbours = self.neighbours(lang)
        return lambda word: [neighbours(word)]

    def _how(self, lang: str) -> str:
        others = ", ".join(other for other in self.languages if other != lang)
        return f"up to {self.copies_per_example} per example, neighbours via {others}"


def augmentation_for(
    config: CodeMixedConfig | SmoothingConfig, *, benchmark_seed: int = 0
) -> CodeMixedAugmentation | SmoothingAugmentation:
    """The augmentation a data strategy's config names, with its lexicons (Bible alignment of the
    embedded benchmark's training verses, or dictd dictionaries)."""
    from xstilts.robustness.transformations import bible_lexicons, dictd_lexicons

    if not isinstance(config, CodeMixedConfig | SmoothingConfig):
        raise XstiltsError(
            f"{getattr(config, 'strategy', config)!r} is not a data strategy; data strategies: code-mixed, "
            "smoothing"
        )
    if config.lexicon == "dictd":
        lexicon = dictd_lexicons(config.dictionaries)
    else:
        lexicon = bible_lexicons(verses=config.alignment_verses, benchmark_seed=benchmark_seed)
    if isinstance(config, CodeMixedConfig):
        return CodeMixedAugmentation(
            config.embedded_languages, config.sentence_probability, config.word_probability, lexicon
        )
    return SmoothingAugmentation(config.languages, config.copies, config.word_probability, lexicon)


def augment_training_examples(
    examples: Sequence[dict],
    kind,
    config: CodeMixedConfig | SmoothingConfig,
    *,
    lang: str,
    seed: int,
    benchmark_seed: int = 0,
) -> tuple[list[dict], str]:
    """`examples` then their copies under the data strategy `config`, in the fields `kind` substitutes,
    and a line for the log."""
    if not kind.substitution_fields:
        from xstilts.tasks.kinds import KINDS

        served = [name for name, other in KINDS.items() if other.substitution_fields]
        raise XstiltsError(
            f"the {config.strategy} strategy cannot train {kind.name} tasks: the kind has no fields whose "
            f"words can be substituted; it serves {', '.join(served)}"
        )
    augmentation = augmentation_for(config, benchmark_seed=benchmark_seed)
    copies = augmentation.copies(examples, kind.substitution_fields, lang, seed)
    return list(examples) + copies.examples, augmentation.describe(copies, len(examples), lang)
