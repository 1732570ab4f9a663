"""Code-mixing by word translation (PolyGloss-like): a word of the input replaced by its translation in
another ("embedded") language, one candidate per translation and language, for a search to choose from.

A translation takes the word's capitalisation (a sentence-initial "Haus" becomes "Maison", not "maison")
where the embedded language has letter case at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xstilts.robustness.lexicon import Lexicon


@dataclass(frozen=True)
class Substitute:
    """A candidate word and the language it comes from (saved with every adversarial example)."""

    text: str
    language: str


def _cased_like(word: str, translation: str) -> str:
    if word.isupper() and len(word) > 1:
        return translation.upper()
    if word[:1].isupper():
        return translation[:1].upper() + translation[1:]
    return translation


def translated_variants(word: str, lexicons: Sequence[Lexicon]) -> list[Substitute]:
    """Every translation of `word` in each lexicon (all from the input's language), best first per
    lexicon, lexicons in the order given; a translation equal to the word is no change and is left out."""
    languages = {lexicon.source_lang for lexicon in lexicons}
    if len(languages) > 1:
        raise ValueError(f"lexicons from several source languages {sorted(languages)}: one input language")
    out = []
    for lexicon in lexicons:
        for translation in lexicon.translations(word):
            text = _cased_like(word, translation)
            if text != word:
                out.append(Substitute(text, lexicon.target_lang))
    return list(dict.fromkeys(out))
