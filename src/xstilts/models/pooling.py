"""Pooling token states into one vector per sequence: one definition for heads and for retrieval."""

from __future__ import annotations

import torch

POOLINGS = ("first", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean over real tokens (padding masked) or the first token (<s>/[CLS])."""
    if pooling == "first":
        return hidden[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
