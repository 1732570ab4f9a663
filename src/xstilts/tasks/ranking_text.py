"""The texts the ranking tasks encode, built as XTREME-R's baselines build them.

- LAReQA: a question is encoded alone; an answer candidate is its sentence followed by its whole
  paragraph, newlines removed (`third_party/processors/lareqa.py`,
  `retrieval_squad_convert_example_to_features`, and `third_party/evaluate_retrieval.py` for XQuAD-R:
  `(sentence + context).replace("\\n", "")`, with no separator).
- Mewsli-X (`third_party/utils_mewslix.py`): a mention is its sentence with the mention span marked by
  braces and the span repeated in front (`preprocess_mention`); an entity is its description's sentences
  joined by spaces (`preprocess_entity_description`). Both are normalised the same way: lines joined by
  spaces, then each double space made single once.

Offsets are Python string indices ([start, end) character spans), as in both releases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xstilts.errors import XstiltsError

_BRACED = re.compile(r"\{(.*?)\}")  # braces already in the text are turned into parentheses


class SpanError(XstiltsError):
    """A span that does not fit its text; the adapters name the record and the field."""


def _normalise(text: str) -> str:
    """utils_mewslix's normalisation: lines joined by a space, double spaces replaced (one pass), stripped."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def check_span(start, end, length: int, what: str) -> tuple[int, int]:
    """(start, end) as ints inside a text of `length` characters, start < end (utils_mewslix's `Span`)."""
    if any(isinstance(x, bool) or not isinstance(x, int) for x in (start, end)):
        raise SpanError(f"{what}: start and end must be integers, got {start!r} and {end!r}")
    if not 0 <= start < end <= length:
        raise SpanError(f"{what}: span [{start}, {end}) does not fit a text of {length} characters")
    return start, end


def lareqa_candidate(sentence: str, context: str) -> str:
    """An answer candidate: the sentence, then its paragraph, with no separator and no newlines."""
    return (sentence + context).replace("\n", "")


def entity_text(description: str, sentences: Sequence[tuple[int, int]]) -> str:
    """An entity's description as encoded: its annotated sentences joined by spaces."""
    return _normalise(" ".join(description[start:end] for start, end in sentences))


def mention_query(text: str, sentences: Sequence[tuple[int, int]], start: int, end: int) -> str:
    """A mention in context: `<mention>: <left> { <mention> } <right>` over the one sentence holding it.

    A mention that no single sentence holds is an error (utils_mewslix asserts the same)."""
    holder = next((s for s in sentences if s[0] <= start and end <= s[1]), None)
    if holder is None:
        raise SpanError(f"the mention [{start}, {end}) is not inside one sentence of its context")
    sentence = text[holder[0] : holder[1]]
    mention = text[start:end]
    left = _BRACED.sub(r"(\1)", sentence[: start - holder[0]])
    right = _BRACED.sub(r"(\1)", sentence[end - holder[0] :])
    return _normalise(f"{mention}: {left} {{ {mention} }} {right}")
