"""Edits: what every transformation proposes and every search applies.

An edit replaces the words `start..end-1` of one text field of an example (words as `robustness.words`
numbers them) with `text`, a word or phrase in `language`. Edits of one attacked example never overlap,
so applying them in any order gives one perturbed example; everything between words (spaces,
punctuation) stays as it was.

A transformation is any object with a `name` and
`candidates(examples, lang, fields) -> list[list[Edit]]`: every candidate edit of each example (in the
order given), on the named fields, for a search to choose from. Candidates are proposed once, on the
clean example, for all examples of a language at once (so a transformation can batch its own work:
aligning phrases, running a masked LM).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from xstilts.robustness.words import word_spans


@dataclass(frozen=True)
class Edit:
    field: str
    start: int  # first word replaced
    end: int  # one past the last word replaced
    text: str  # what replaces them
    language: str  # the language of `text` (the input's own for noise and MLM substitutes)

    @property
    def words(self) -> int:
        return self.end - self.start

    def overlaps(self, other: Edit) -> bool:
        return self.field == other.field and self.start < other.end and other.start < self.end


class Transformation(Protocol):
    name: str

    def candidates(self, examples: Sequence[dict], lang: str, fields: Sequence[str]) -> list[list[Edit]]: ...


def apply_edits(example: dict, edits: Sequence[Edit]) -> dict:
    """A copy of `example` with `edits` applied (non-overlapping; fields not edited are the same objects)."""
    out = dict(example)
    by_field: dict[str, list[Edit]] = defaultdict(list)
    for edit in edits:
        by_field[edit.field].append(edit)
    for field, field_edits in by_field.items():
        text = example[field]
        spans = word_spans(text)
        pieces, last = [], 0
        for edit in sorted(field_edits, key=lambda e: e.start):
            if not 0 <= edit.start < edit.end <= len(spans) or spans[edit.start][0] < last:
                raise ValueError(f"edit {edit} does not fit the {len(spans)} words of {field!r} or overlaps")
            pieces += [text[last : spans[edit.start][0]], edit.text]
            last = spans[edit.end - 1][1]
        out[field] = "".join(pieces) + text[last:]
    return out


def replaced_words(example: dict, edit: Edit) -> str:
    """The original text an edit replaces (saved beside the replacement in every adversarial example)."""
    spans = word_spans(example[edit.field])
    return example[edit.field][spans[edit.start][0] : spans[edit.end - 1][1]]
