"""Phrase pairs of a word-aligned sentence pair: the units a phrase-mixing attack swaps in.

Standard consistent phrase extraction (as in phrase-based MT): a source span whose linked target words
form a span that links back only into the source span. Spans are tight: a span never starts or ends with
an unaligned word, on either side (the usual extension over unaligned boundary words would only add
near-duplicates of the same phrase with a stray article or particle). Single words are phrases too, so an
attack has a candidate on every aligned word.
"""

from __future__ import annotations

from collections.abc import Iterable


def phrase_pairs(
    source_len: int, target_len: int, links: Iterable[tuple[int, int]], *, max_words: int = 3
) -> list[tuple[int, int, int, int]]:
    """(source start, source end, target start, target end), ends exclusive, of every consistent phrase
    pair with at most `max_words` words on each side; sorted by source start, then source end."""
    links = sorted(set(links))
    bad = [(i, j) for i, j in links if not (0 <= i < source_len and 0 <= j < target_len)]
    if bad:
        raise ValueError(f"links {bad} fall outside {source_len} source and {target_len} target words")
    by_source: dict[int, list[int]] = {}
    by_target: dict[int, list[int]] = {}
    for i, j in links:
        by_source.setdefault(i, []).append(j)
        by_target.setdefault(j, []).append(i)
    pairs = []
    for start in sorted(by_source):  # tight: the first source word is aligned
        for end in range(start + 1, min(start + max_words, source_len) + 1):
            if end - 1 not in by_source:  # tight: so is the last
                continue
            targets = [j for i in range(start, end) for j in by_source.get(i, ())]
            low, high = min(targets), max(targets) + 1
            if high - low > max_words:
                continue
            back = (i for j in range(low, high) for i in by_target.get(j, ()))
            if all(start <= i < end for i in back):
                pairs.append((start, end, low, high))
    return pairs
