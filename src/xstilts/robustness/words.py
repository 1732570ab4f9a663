"""Words of any script for attacks: spans into the original text, so a perturbed input keeps everything
between the words (spaces, punctuation, digits) exactly as it was.

The word pattern is the word aligner's (`analysis.word_alignment`): letters keep their combining marks
(a Devanagari vowel sign is never split from its consonant, unlike TextAttack's `\\w`), and each character
of a script written without spaces (Han, kana, Thai, ...) is a word of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from xstilts.analysis.word_alignment import WORD_PATTERN


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word of `text`, in order."""
    return [match.span() for match in WORD_PATTERN.finditer(text)]


def words_of(text: str) -> list[str]:
    """The words of `text` as written (case kept: an attack changes the text the model reads)."""
    return [text[start:end] for start, end in word_spans(text)]


def replace_words(text: str, replacements: Mapping[int, str]) -> str:
    """`text` with word i (as `word_spans` numbers them) replaced by `replacements[i]`; the rest is kept."""
    spans = word_spans(text)
    unknown = sorted(set(replacements) - set(range(len(spans))))
    if unknown:
        raise IndexError(f"word indices {unknown} out of range: the text has {len(spans)} words")
    pieces, last = [], 0
    for index, (start, end) in enumerate(spans):
        if index in replacements:
            pieces += [text[last:start], replacements[index]]
            last = end
    return "".join(pieces) + text[last:]
