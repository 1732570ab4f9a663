"""Word translation pairs from word alignment of a parallel corpus (the alternative to a dictionary).

Pipeline:

1. `tokenize_words`: lower-cased words of letters (with their combining marks); digits, punctuation and
   symbols are separators and dropped. Scripts written without spaces between words (Han, Hiragana,
   Katakana, Thai, Lao, Khmer, Myanmar) have no word boundaries a regular expression can find, so each
   character (with its combining marks) is a word of its own: Chinese and Japanese pairs are single
   characters, and Thai pairs are mostly letters. This keeps the module free of language-specific
   segmenters; pass pre-segmented text (words separated by spaces) for word-level pairs in those scripts.
   Apostrophes and hyphens split words ("lord's" -> "lord", "s"), which keeps one spelling per word.
2. Alignment with eflomal (Östling & Tiedemann 2017; `eflomal.Aligner`, model 3 = IBM1 + HMM +
   fertility, its default iterations, 3 samplers, null prior 0.2): eflomal writes the forward and the
   reverse alignment, both as source-target links.
3. Symmetrisation by intersection: a link is kept when both directions have it. That is the high-precision
   standard heuristic (grow-diag-final-and adds recall but also the looser links around it, and eflomal
   itself ships no symmetriser), and precision is what a gold word list needs.
4. Counting and filtering: links are counted as (source word, target word) over the corpus; a pair is kept
   when it has at least `min_count` links and each word is the other's most frequent partner, strictly
   (a tie drops the word), so the result is a one-to-one lexicon. Identical strings (names, numbers
   written in letters, cognates, loanwords) are kept: they are real translations, and for retrieval they
   are the pairs a model gets right from spelling alone, so report them or filter them as the study needs.

eflomal's Gibbs sampler seeds itself from /dev/urandom and takes no seed, so two runs on the same corpus
can differ in links; counting and the mutual-best filter make the pair list nearly stable, but a pair near
the `min_count` threshold can come and go (500 Bible verses: 93-97% of the de-en and ru-en pairs and 84% of
the zh-en pairs recur in a second run). `seed` only fixes the `max_pairs` sample. A word the sampler leaves
unaligned (NULL) in one direction has no links after the intersection; on text with no word-order
correspondence at all (shuffled toy data) the fertility model does that to whole words. eflomal skips
sentences of 1024 or more words (they get no links).
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import regex

from xstilts.errors import XstiltsError

INSTALL_HINT = "word alignment needs eflomal: pip install 'xstilts[words]' (or pip install 'eflomal>=2.0')"
UNSPACED_SCRIPTS = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar")

_UNSPACED = "".join(rf"\p{{{script}}}" for script in UNSPACED_SCRIPTS)
# One character of an unspaced script (with its marks), or a run of other letters (with their marks).
WORD_PATTERN = regex.compile(rf"(?=\p{{L}})[{_UNSPACED}]\p{{M}}*|(?:(?![{_UNSPACED}])\p{{L}}\p{{M}}*)+")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased words of `text`: letter runs; one word per character in scripts without spaces.

    Letters keep their combining marks (Devanagari vowel signs, Thai tone marks); digits, punctuation,
    symbols and underscores separate words and are dropped. Han, Hiragana, Katakana, Thai, Lao, Khmer and
    Myanmar characters are each a word (see the module docstring for why).
    """
    if not isinstance(text, str):
        raise XstiltsError(f"tokenize_words expects a string, got {type(text).__name__}")
    return WORD_PATTERN.findall(text.lower())


def _eflomal():
    try:
        import eflomal
    except ImportError as error:
        raise XstiltsError(INSTALL_HINT) from error
    return eflomal


def _read_links(path: Path, n_sentences: int) -> list[set[tuple[int, int]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != n_sentences:
        raise XstiltsError(f"eflomal wrote {len(lines)} alignment lines for {n_sentences} sentences")
    links = []
    for line in lines:
        pairs = set()
        for link in line.split():
            i, j = link.split("-")
            pairs.add((int(i), int(j)))
        links.append(pairs)
    return links


def align_words(
    source_words: Sequence[Sequence[str]], target_words: Sequence[Sequence[str]]
) -> list[set[tuple[int, int]]]:
    """Intersected eflomal links (source position, target position) per sentence of tokenised text.

    Words must not contain whitespace (eflomal reads space-separated lines); use `tokenize_words`.
    """
    if len(source_words) != len(target_words):
        raise XstiltsError(
            f"parallel text differs in length: {len(source_words)} source vs "
            f"{len(target_words)} target sentences"
        )
    eflomal = _eflomal()
    with tempfile.TemporaryDirectory(prefix="xstilts-eflomal-") as tmp:
        forward, reverse = Path(tmp) / "forward", Path(tmp) / "reverse"
        try:
            eflomal.Aligner().align(
                [" ".join(words) for words in source_words],
                [" ".join(words) for words in target_words],
                links_filename_fwd=str(forward),
                links_filename_rev=str(reverse),
            )
        except (subprocess.CalledProcessError, OSError, ValueError) as error:
            raise XstiltsError(f"eflomal word alignment failed: {error}") from error
        fwd = _read_links(forward, len(source_words))
        rev = _read_links(reverse, len(source_words))
    return [f & r for f, r in zip(fwd, rev, strict=True)]


def _strict_best(counts: Counter, side: int) -> dict[str, str]:
    """Each word of one side -> its most frequent partner, where that partner is unique."""
    best: dict[str, tuple[int, str | None]] = {}
    for pair, count in counts.items():
        word, partner = pair[side], pair[1 - side]
        top = best.get(word)
        if top is None or count > top[0]:
            best[word] = (count, partner)
        elif count == top[0]:
            best[word] = (count, None)
    return {word: partner for word, (_, partner) in best.items() if partner is not None}


def link_counts(
    source_words: Sequence[Sequence[str]],
    target_words: Sequence[Sequence[str]],
    links: Iterable[set[tuple[int, int]]],
) -> Counter:
    """(source word, target word) -> number of links over the corpus."""
    counts: Counter = Counter()
    for src, tgt, sentence_links in zip(source_words, target_words, links, strict=True):
        counts.update((src[i], tgt[j]) for i, j in sentence_links)
    return counts


def mutual_best_pairs(counts: Counter, min_count: int) -> list[tuple[str, str]]:
    """Sorted pairs with >= `min_count` links where each word is the other's strictly most frequent partner.

    Best partners are taken over all counts, those below the threshold included.
    """
    forward, backward = _strict_best(counts, 0), _strict_best(counts, 1)
    return sorted(
        (src, tgt)
        for src, tgt in forward.items()
        if backward.get(tgt) == src and counts[(src, tgt)] >= min_count
    )


def aligned_word_pairs(
    source_texts: Iterable[str],
    target_texts: Iterable[str],
    *,
    min_count: int = 3,
    max_pairs: int | None = None,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """(source word, target word) pairs from eflomal word alignment of parallel sentences, sorted.

    Sentence i of `source_texts` translates sentence i of `target_texts`. Words come from
    `tokenize_words`, links are the intersection of the forward and reverse alignment, and a pair is kept
    when it has at least `min_count` links and the two words are each other's most frequent partner
    (one-to-one). With `max_pairs`, a seeded random sample of that many pairs (sorted). Identical strings
    on both sides are kept. See the module docstring for the choices and eflomal's unseeded sampler.
    """
    source, target = list(source_texts), list(target_texts)
    if len(source) != len(target):
        raise XstiltsError(
            f"parallel text differs in length: {len(source)} source vs {len(target)} target sentences"
        )
    if not source:
        raise XstiltsError("word alignment needs at least one pair of parallel sentences, got none")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise XstiltsError(f"min_count must be an integer >= 1, got {min_count!r}")
    if max_pairs is not None and (
        isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 0
    ):
        raise XstiltsError(f"max_pairs must be None or an integer >= 0, got {max_pairs!r}")
    _eflomal()  # the install hint before any work
    source_words = [tokenize_words(text) for text in source]
    target_words = [tokenize_words(text) for text in target]
    if not any(s and t for s, t in zip(source_words, target_words, strict=True)):
        raise XstiltsError(
            f"no sentence pair among {len(source)} has words on both sides (words are letters only)"
        )
    links = align_words(source_words, target_words)
    pairs = mutual_best_pairs(link_counts(source_words, target_words, links), min_count)
    if max_pairs is not None and max_pairs < len(pairs):
        pairs = sorted(random.Random(seed).sample(pairs, max_pairs))
    return pairs
