"""Input checks shared by the scorers: a mismatch between predictions and gold is an error, never a score.

`ScoringError` is both an `XstiltsError` (the CLI prints it without a traceback) and a `ValueError` (what
callers of plain metric functions expect for bad arguments).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sized

from xstilts.errors import XstiltsError


class ScoringError(XstiltsError, ValueError):
    """Predictions and gold do not line up (missing or extra ids, different lengths, empty input)."""


def _shown(names: Iterable[object], limit: int = 10) -> str:
    names = sorted(map(str, names))
    return ", ".join(names[:limit]) + (f" ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_same_ids(predictions: Collection, gold: Collection, what: str = "questions") -> None:
    """Every gold id needs a prediction and every prediction a gold id; both lists are named."""
    missing = set(gold) - set(predictions)
    if missing:
        raise ScoringError(f"{len(missing)} {what} have no prediction: {_shown(missing)}")
    extra = set(predictions) - set(gold)
    if extra:
        raise ScoringError(f"{len(extra)} predictions are for unknown {what}: {_shown(extra)}")
    if not gold:
        raise ScoringError(f"no {what} to score")


def check_same_lengths(predictions: Sized, gold: Sized, what: str = "examples") -> None:
    if len(predictions) != len(gold):
        raise ScoringError(f"{len(predictions)} predictions for {len(gold)} {what}")
    if len(gold) == 0:
        raise ScoringError(f"no {what} to score")


def check_sequences(predictions: list[list], gold: list[list]) -> None:
    """Same number of sentences, and the same number of tags in each; the first bad sentence is named."""
    check_same_lengths(predictions, gold, "sentences")
    for i, (pred, true) in enumerate(zip(predictions, gold, strict=True), start=1):
        if len(pred) != len(true):
            raise ScoringError(f"sentence {i} has {len(pred)} predicted tags for {len(true)} gold tags")
