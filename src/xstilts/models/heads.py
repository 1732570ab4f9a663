"""Encoder + named task heads, and the strict rules for moving weights between phases."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from xstilts.models.pooling import POOLINGS, pool


class PooledHead(nn.Module):
    """RoBERTa-style head on a pooled vector: dropout -> dense -> tanh -> dropout -> projection."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class MultiHeadModel(nn.Module):
    """One shared encoder and a head per task name (tasks may share a head by name later).

    `pooling` is how heads see a sequence: "first" (<s>, the XLM-R convention) or "mean" (how e5-style
    sentence encoders were trained).
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: dict[str, int] | None = None,
        pooling: str = "first",
        dropout: float = 0.1,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = dropout
        self.heads = nn.ModuleDict()
        for name, outputs in (heads or {}).items():
            self.add_head(name, outputs)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def add_head(self, name: str, num_outputs: int) -> None:
        self.heads[name] = PooledHead(self.hidden_size, num_outputs, self.dropout)

    def head_spec(self) -> dict[str, int]:
        return {name: head.out_proj.out_features for name, head in self.heads.items()}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, head: str) -> torch.Tensor:
        """Logits of `head`; a (batch, choices, length) input is flattened to rows first."""
        if input_ids.dim() == 3:
            input_ids = input_ids.flatten(0, 1)
            attention_mask = attention_mask.flatten(0, 1)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads[head](pool(hidden, attention_mask, self.pooling))


@dataclass
class LoadReport:
    """What a phase transition did with each parameter; printed so nothing moves silently."""

    loaded: list[str] = field(default_factory=list)
    dropped_heads: list[str] = field(default_factory=list)
    new_heads: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors; dropped heads: {self.dropped_heads or 'none'}; "
            f"newly initialised heads: {self.new_heads or 'none'}"
        )


class StrictLoadError(RuntimeError):
    """A checkpoint does not fit the model in a way other than whole heads coming or going."""


def _head_of(key: str) -> str | None:
    return key.split(".")[1] if key.startswith("heads.") else None


def load_phase_state(model: MultiHeadModel, state: dict[str, torch.Tensor]) -> LoadReport:
    """Load `state` into `model`: the encoder must match exactly; whole heads may be dropped or new."""
    own = model.state_dict()
    report = LoadReport()
    own_heads = {h for k in own if (h := _head_of(k))}
    ckpt_heads = {h for k in state if (h := _head_of(k))}
    report.dropped_heads = sorted(ckpt_heads - own_heads)
    report.new_heads = sorted(own_heads - ckpt_heads)
    problems = []
    to_load = {}
    for key, tensor in state.items():
        head = _head_of(key)
        if head in report.dropped_heads:
            continue
        if key not in own:
            problems.append(f"unexpected tensor {key}")
        elif own[key].shape != tensor.shape:
            problems.append(
                f"shape mismatch for {key}: checkpoint {tuple(tensor.shape)} vs model {tuple(own[key].shape)}"
            )
        else:
            to_load[key] = tensor
    for key in own:
        if _head_of(key) in report.new_heads:
            continue
        if key not in state:
            problems.append(f"missing tensor {key}")
    if problems:
        raise StrictLoadError("checkpoint does not match the model:\n  " + "\n  ".join(problems))
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    return report
