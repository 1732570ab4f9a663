"""Sentence boundaries of a SQuAD-style paragraph, for LAReQA's answer sentences.

SQuAD v1.1 (LAReQA's training and dev data) and the hub's XQuAD-R rows carry no sentence annotation, so
the sentences are inferred the way XTREME does it for SQuAD (`third_party/processors/lareqa.py` calls
`infer_sentence_breaks` of `third_party/processors/sb_sed.py`): cut after sentence-final punctuation
followed by whitespace and an upper-case letter or digit, then undo the cuts after abbreviations, titles
and initials, then cut again before a few common sentence openers. The rules here are sb_sed's general
ones (its patches for a few single SQuAD names, such as "Warner Bros.", are left out; so is its "As"
opener, which needs two spaces after the word and so never fires). The released XQuAD-R files have their
own `sentence_breaks`, which are used as they are.

Every rule keeps the text's length (a break replaces one whitespace character by a newline, a rejoin
turns it back into a space), so the lines of the marked text sit at the original character offsets.
"""

from __future__ import annotations

import re

_BREAK = "\n"

# A cut: sentence-final punctuation (and closing quotes/brackets), one whitespace character (becomes the
# break), then an optional opening quote/bracket and an upper-case letter or digit.
_CUTS = (
    re.compile(r"""([.?!][)'" \u201d]*)\s(\s*[\['"(\u201c]?[A-Z0-9])"""),
    # editorial marks stuck to the end of a sentence: ".[citation needed] Next", ".[3] Next"
    re.compile(r"""([.?!]['"]?(?:\[[a-zA-Z0-9 ?]+\])+)\s(\s*['"(]?[A-Z0-9])"""),
    # an elided quotation: "things [...] But"
    re.compile(r"(\[\.\.\.\]\s*)\s(\[?[A-Z])"),
)

_TITLES = ("Mrs?", "Ms", "Dr", "Prof", "Fr", "Rev", "Msgr", "Sta?", "Lt", "Gen", "Col", "Maj", "Adm",
           "Capt", "Sgt", "Rep", "Gov", "Sen", "Pres")  # fmt: skip
_ABBREVIATIONS = ("e\\.g", "i\\.?e", "vs?", "pp?", "cf", "a\\.k\\.a", "approx", "app", "es[pt]", "tr",
                  "Jan", "Aug", "Oct", "Nov", "Dec", "Mt", "Ft")  # fmt: skip
_NUMBERED = ("[Aa]rt", "[Nn]o", "Opp?", "ch", "Sec", "cl", "Rec", "Ecl", "Cor", "Lk", "Jn", "Vol")

# A rejoin: the break in group 2 of the match turns back into a space.
_JOINS = (
    re.compile(rf"\b((?:{'|'.join(_TITLES + _ABBREVIATIONS)})\.)(\n)"),
    re.compile(r"\b([ap]\.m\.)(\n)(?=(?:Eastern|EST)\b)"),
    re.compile(rf"\b((?:{'|'.join(_NUMBERED)})\.)(\n)(?=[0-9IVX]+\b)"),
    re.compile(r"\b((?:[bdrc]|ca|fl)\.)(\n)(?=[A-Z0-9])"),  # born, died, ruled, circa, flourished
    re.compile(r"\b(et al\.)(\n)(?=\(?[0-9]{4}\b)"),
    re.compile(r"\b(H\.R\.)(\n)(?=[0-9])"),
    re.compile(r"\b(U\.S\.)(\n)(?=\(?\d\d+)"),
    re.compile(r"\b(Rs\.)(\n)(?=\d)"),
    re.compile(r"(\.Sc\.)(\n)"),
    # initials before a name: "J. R. R. Tolkien", "J.R. Smith", "T. Eliot"
    re.compile(r"\b([A-Z]\.)([ \n])(?=(?:[A-Z]\.[ \n]){0,2}\"?[A-Z][a-z])"),
    re.compile(r"\b([A-Z]\.[A-Z]\.)(\n)(?=\"?[A-Z][a-z])"),
)

# Cuts made again after the rejoins: before common sentence openers, whatever precedes them.
_OPENERS = (
    re.compile(r"""([.!?]['")]*)( )(?=(?:The|This|That|These|It) )"""),
    re.compile(r"(\.)( )(?=Meanwhile|However)"),
    re.compile(r"(\.)( )(?=(?:In|On|By|During|After|Under|Although|Yet|Several|According to) )"),
)


def _mark(text: str) -> str:
    """`text` with a newline in place of the whitespace character at each sentence boundary."""
    marked = text.replace("\n", " ")
    for cut in _CUTS:
        marked = cut.sub(lambda m: m.group(1) + _BREAK + m.group(2), marked)
    for join in _JOINS:
        marked = join.sub(lambda m: m.group(1) + " ", marked)
    for opener in _OPENERS:
        marked = opener.sub(lambda m: m.group(1) + _BREAK, marked)
    return marked


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of `text`, surrounding whitespace excluded."""
    marked = _mark(text)
    if len(marked) != len(text):  # pragma: no cover - every rule keeps the length
        raise AssertionError("sentence marking changed the text's length")
    spans, start = [], 0
    for line in marked.split(_BREAK):
        stripped = line.strip()
        if stripped:
            begin = start + len(line) - len(line.lstrip())
            spans.append((begin, begin + len(stripped)))
        start += len(line) + 1
    return spans
