"""Script-aware character noise for one word: the candidates a search tries in its place.

Every operation works on grapheme clusters (`regex`'s `\\X`), never on code points, so a Devanagari
consonant keeps its vowel sign and virama, and a Thai consonant its tone mark. Like TextAttack's character
swaps, the first and last grapheme stay in place (readers recover a word from its ends); insertions repeat a
grapheme of the word itself, so the inserted character is of the word's own script.
- `swap`: two neighbouring inner graphemes exchanged;
- `delete`: an inner grapheme dropped;
- `insert`: an inner grapheme written twice;
- `homoglyph`: one character replaced by a look-alike of another script, from the Unicode confusables
  table (the `confusable-homoglyphs` package);
- `diacritics`: combining accents removed from Latin, Greek and Cyrillic letters (é -> e, й -> и).
"""

from __future__ import annotations

import functools
import unicodedata

import regex

NOISE_KINDS = ("swap", "delete", "insert", "homoglyph", "diacritics")
_GRAPHEME = regex.compile(r"\X")
# a combining mark that follows a Latin, Greek or Cyrillic letter (NFD): an accent, not a vowel sign
_ACCENT = regex.compile(r"(?<=[\p{Latin}\p{Greek}\p{Cyrillic}]\p{Mn}*)\p{Mn}")


def graphemes(word: str) -> list[str]:
    return _GRAPHEME.findall(word)


def _swaps(parts: list[str]) -> list[str]:
    return [
        "".join([*parts[:i], parts[i + 1], parts[i], *parts[i + 2 :]])
        for i in range(1, len(parts) - 2)
        if parts[i] != parts[i + 1]
    ]


def _deletions(parts: list[str]) -> list[str]:
    return ["".join(parts[:i] + parts[i + 1 :]) for i in range(1, len(parts) - 1)]


def _insertions(parts: list[str]) -> list[str]:
    return ["".join([*parts[: i + 1], parts[i], *parts[i + 1 :]]) for i in range(1, len(parts) - 1)]


@functools.cache
def _look_alike(char: str) -> str | None:
    """The first confusable of `char` that is one letter of another script, or None."""
    from confusable_homoglyphs import confusables

    for entry in confusables.confusables_data.get(char, ()):
        other = entry["c"]
        letter = len(other) == 1 and unicodedata.category(other).startswith("L")
        if letter and other != char and _script(other) not in (None, _script(char)):
            return other
    return None


def _script(char: str) -> str | None:
    for script in ("Latin", "Greek", "Cyrillic", "Armenian", "Cherokee", "Arabic", "Hebrew"):
        if regex.match(rf"\p{{{script}}}", char):
            return script
    return None


def _homoglyphs(word: str) -> list[str]:
    out = []
    for i, char in enumerate(word):
        other = _look_alike(char)
        if other is not None:
            out.append(word[:i] + other + word[i + 1 :])
    return out


def _without_accents(word: str) -> list[str]:
    plain = unicodedata.normalize("NFC", _ACCENT.sub("", unicodedata.normalize("NFD", word)))
    return [plain] if plain != word else []


_OPERATIONS = {
    "swap": lambda word: _swaps(graphemes(word)),
    "delete": lambda word: _deletions(graphemes(word)),
    "insert": lambda word: _insertions(graphemes(word)),
    "homoglyph": _homoglyphs,
    "diacritics": _without_accents,
}


def noisy_variants(word: str, kinds: tuple[str, ...] = NOISE_KINDS) -> list[str]:
    """Every candidate of the chosen kinds for `word`, in a fixed order, without repeats or `word` itself."""
    unknown = sorted(set(kinds) - set(_OPERATIONS))
    if unknown:
        raise ValueError(f"unknown character noise {unknown}; valid: {', '.join(NOISE_KINDS)}")
    found = (variant for kind in kinds for variant in _OPERATIONS[kind](word))
    return [variant for variant in dict.fromkeys(found) if variant != word]
