"""User-facing errors: one exception type the CLI turns into a clean message (no traceback)."""

from __future__ import annotations

from collections.abc import Iterable


class XstiltsError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> XstiltsError:
    """The standard 'unknown X' error that always lists the valid names."""
    names = ", ".join(sorted(valid))
    return XstiltsError(f"unknown {kind} {name!r}; valid {kind}s: {names}")
