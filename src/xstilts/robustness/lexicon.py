"""Bilingual lexicons for code-mixing attacks: word -> its likely translations in another language.

Two sources, one shape:
- `aligned_lexicon`: induced from word alignment of parallel text (the Bible offline: every pair of its
  languages). It reuses `analysis.word_alignment` (eflomal, intersected links) but keeps several
  translations per word, ranked by link count, where `align` keeps a one-to-one list for measuring.
- `dictd_lexicon`: a FreeDict dictionary (English -> a language), read by `analysis.words.load_dictd`.
`compose` pivots through English where no direct pair exists (xx -> en -> yy), as PolyGloss does with
its bilingual dictionaries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.analysis.word_alignment import align_words, link_counts, tokenize_words
from xstilts.errors import XstiltsError


@dataclass(frozen=True)
class Lexicon:
    """`entries`: lower-cased source word -> translations, most likely first."""

    source_lang: str
    target_lang: str
    entries: dict[str, tuple[str, ...]]

    def translations(self, word: str) -> tuple[str, ...]:
        return self.entries.get(word.lower(), ())

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def pair(self) -> str:
        return f"{self.source_lang}-{self.target_lang}"


def _best(ranked: dict[str, list[tuple[int, str]]], per_word: int) -> dict[str, tuple[str, ...]]:
    """word -> its `per_word` best (rank, translation) entries' translations, best rank first."""
    return {word: tuple(t for _, t in sorted(found)[:per_word]) for word, found in sorted(ranked.items())}


def lexicon_from_counts(
    counts: Counter, source_lang: str, target_lang: str, *, min_count: int = 2, per_word: int = 3
) -> Lexicon:
    """Each source word's partners with at least `min_count` links, the `per_word` most linked first (ties
    in alphabetical order, so the lexicon does not depend on counting order)."""
    partners: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (source, target), count in counts.items():
        if count >= min_count:
            partners[source].append((-count, target))
    return Lexicon(source_lang, target_lang, _best(partners, per_word))


def aligned_lexicon(
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    source_lang: str,
    target_lang: str,
    *,
    min_count: int = 2,
    per_word: int = 3,
) -> Lexicon:
    """A lexicon induced from eflomal word alignment of parallel sentences (row i translates row i)."""
    if len(source_texts) != len(target_texts) or not source_texts:
        raise XstiltsError(
            f"a {source_lang}-{target_lang} lexicon needs parallel sentences of equal number, got "
            f"{len(source_texts)} and {len(target_texts)}"
        )
    source_words = [tokenize_words(text) for text in source_texts]
    target_words = [tokenize_words(text) for text in target_texts]
    counts = link_counts(source_words, target_words, align_words(source_words, target_words))
    return lexicon_from_counts(counts, source_lang, target_lang, min_count=min_count, per_word=per_word)


def dictd_lexicon(index_path: str | Path, target_lang: str, *, per_word: int = 3) -> Lexicon:
    """English -> `target_lang` from a dictd dictionary; multi-word translations are kept (a phrase is a
    valid code-mixed substitute), headwords are lower-cased."""
    from xstilts.analysis.words import load_dictd

    entries: dict[str, list[str]] = defaultdict(list)
    for headword, translations in load_dictd(index_path).items():
        found = entries[headword.lower()]
        found += [t for t in translations if t not in found]
    kept = {word: tuple(found[:per_word]) for word, found in entries.items() if found}
    return Lexicon("en", target_lang, kept)


def invert(lexicon: Lexicon, *, per_word: int = 3) -> Lexicon:
    """The lexicon read the other way: each translation -> the source words that have it, by rank."""
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for word, translations in lexicon.entries.items():
        for rank, translation in enumerate(translations):
            found[translation.lower()].append((rank, word))
    return Lexicon(lexicon.target_lang, lexicon.source_lang, _best(found, per_word))


def compose(first: Lexicon, second: Lexicon, *, per_word: int = 3) -> Lexicon:
    """`first` then `second` (xx -> pivot -> yy): a word's translations through each pivot word, in the
    order of the pivot words' ranks, without repeats."""
    if first.target_lang != second.source_lang:
        raise XstiltsError(
            f"cannot pivot {first.pair} through {second.pair}: the first's target language must be the "
            "second's source language"
        )
    entries = {}
    for word, pivots in first.entries.items():
        through = list(dict.fromkeys(t for pivot in pivots for t in second.translations(pivot)))
        if through:
            entries[word] = tuple(through[:per_word])
    return Lexicon(first.source_lang, second.target_lang, entries)


def bible_lexicon(
    source_lang: str,
    target_lang: str,
    *,
    verses: int = 3000,
    min_count: int = 2,
    per_word: int = 3,
    benchmark_seed: int = 0,
) -> Lexicon:
    """The offline default: a lexicon induced from `verses` parallel Bible verses of any two of its
    languages, cached on disk (eflomal's sampler is unseeded, so the cache is also what makes every attack
    of a study use the same lexicon).

    The verses come from the training chapters of the embedded benchmark (`benchmark_seed`): the test
    sentences an attack perturbs never shaped its lexicon. An evenly spaced selection covers every book."""
    import json

    from xstilts.io import atomic_file, cache_dir
    from xstilts.tasks import bible

    key = f"{source_lang}-{target_lang}-{verses}-{min_count}-{per_word}-{benchmark_seed}"
    path = cache_dir() / "lexicons" / f"bible-{key}-{bible.corpus_identity()}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Lexicon(source_lang, target_lang, {word: tuple(found) for word, found in data.items()})
    except (OSError, ValueError, AttributeError):
        pass  # not built yet, or damaged: built (again)
    source, target = bible_training_pairs(
        source_lang, target_lang, verses=verses, benchmark_seed=benchmark_seed
    )
    lexicon = aligned_lexicon(
        source, target, source_lang, target_lang, min_count=min_count, per_word=per_word
    )
    with atomic_file(path) as handle:
        json.dump(lexicon.entries, handle, ensure_ascii=False)
    return lexicon


def bible_training_pairs(
    source_lang: str, target_lang: str, *, verses: int = 3000, benchmark_seed: int = 0
) -> tuple[list[str], list[str]]:
    """`verses` parallel Bible verses (source texts, target texts) from the training chapters of the
    embedded benchmark (`benchmark_seed`), evenly spaced so every book is covered: word-alignment
    statistics that never saw a test sentence."""
    import numpy as np

    from xstilts.tasks import bible

    source, target = bible.load_verses(source_lang), bible.load_verses(target_lang)  # unknown -> listed
    splits = bible.chapter_splits(benchmark_seed)
    train = [k for k in bible.aligned_keys() if splits.get(k[:2]) == "train" and k in source and k in target]
    chosen = [train[i] for i in np.linspace(0, len(train) - 1, min(verses, len(train))).astype(int)]
    return [source[k] for k in chosen], [target[k] for k in chosen]
