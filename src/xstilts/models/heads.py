"""Encoder + named task heads, and the strict rules for moving weights between phases.

A head reads either the pooled sequence ("sequence" level: classification, multiple choice) or every
token's hidden state ("token" level: span QA's start/end logits, tagging). Its `HeadSpec` (level and
number of outputs) is what checkpoint metadata records, so a head never silently changes shape or level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from xstilts.models.pooling import POOLINGS, pool

HEAD_LEVELS = ("sequence", "token", "mlm")  # mlm: a masked-LM head tied to the word embeddings


@dataclass(frozen=True)
class HeadSpec:
    """What a head computes: `outputs` numbers per sequence or per token."""

    outputs: int
    level: str = "sequence"

    def __post_init__(self):
        if self.level not in HEAD_LEVELS:
            raise ValueError(f"unknown head level {self.level!r}; valid: {', '.join(HEAD_LEVELS)}")
        if self.outputs < 1:
            raise ValueError(f"a head needs at least one output, got {self.outputs}")

    @classmethod
    def parse(cls, value: HeadSpec | int | Mapping) -> HeadSpec:
        """From a spec, a bare output count (a sequence-level head: the original metadata format) or
        checkpoint metadata ({"level": ..., "outputs": ...})."""
        if isinstance(value, HeadSpec):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, Mapping) and set(value) == {"level", "outputs"}:
            return cls(int(value["outputs"]), str(value["level"]))
        raise ValueError(f"not a head spec: {value!r}")

    def to_meta(self) -> dict:
        return {"level": self.level, "outputs": self.outputs}

    def __str__(self) -> str:
        return f"{self.level}-level with {self.outputs} output{'s' if self.outputs != 1 else ''}"


class PooledHead(nn.Module):
    """RoBERTa-style head on a pooled vector: dropout -> dense -> tanh -> dropout -> projection."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.spec = HeadSpec(num_outputs, "sequence")
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class TokenHead(nn.Module):
    """A projection of every token's hidden state (after dropout): (batch, length, outputs)."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.spec = HeadSpec(num_outputs, "token")
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(hidden))


HEAD_TYPES = {"sequence": PooledHead, "token": TokenHead}


class MultiHeadModel(nn.Module):
    """One shared encoder and a head per name (tasks that name the same head share it).

    `heads` maps names to a `HeadSpec` (or a bare output count: a sequence-level head). `pooling` is how
    sequence-level heads see a sequence: "first" (<s>, the XLM-R convention) or "mean" (how e5-style
    sentence encoders were trained); token-level heads see every hidden state.
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: Mapping[str, HeadSpec | int] | None = None,
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
        for name, spec in (heads or {}).items():
            self.add_head(name, spec)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def add_head(self, name: str, spec: HeadSpec | int) -> None:
        spec = HeadSpec.parse(spec)
        if spec.level == "mlm":
            from xstilts.models.mlm_head import MLMHead

            self.heads[name] = MLMHead.for_encoder(self.encoder)
            return
        self.heads[name] = HEAD_TYPES[spec.level](self.hidden_size, spec.outputs, self.dropout)

    def head_spec(self) -> dict[str, HeadSpec]:
        return {name: head.spec for name, head in self.heads.items()}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        head: str,
        positions: torch.Tensor | None = None,
        perturbation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of `head`: (rows, outputs) for a sequence-level head, (rows, length, outputs) for a
        token-level one; a (batch, choices, length) input is flattened to rows first.

        `positions` (a boolean rows x length mask) restricts a per-token head to those tokens and returns
        (n, outputs): the MLM head scores only masked tokens, as its vocabulary projection dominates.
        `perturbation` (rows, length, hidden) is added to the word-embedding lookup of `input_ids` (what
        adversarial training perturbs), never to the embedding matrix; see `_encode`."""
        if input_ids.dim() == 3:
            input_ids = input_ids.flatten(0, 1)
            attention_mask = attention_mask.flatten(0, 1)
        module = self.heads[head]
        hidden = self._encode(input_ids, attention_mask, perturbation)
        if module.spec.level == "sequence":
            return module(pool(hidden, attention_mask, self.pooling))
        return module(hidden if positions is None else hidden[positions])

    def _encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, perturbation: torch.Tensor | None
    ) -> torch.Tensor:
        """The last hidden states. A perturbed input goes in as `inputs_embeds` = word embeddings +
        perturbation, so the encoder adds position and type embeddings and normalises exactly once; its
        position ids are computed from `input_ids` and passed explicitly, because XLM-R cannot see padding
        in `inputs_embeds` and would number the positions of padded rows wrongly."""
        if perturbation is None:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        embeds = self.encoder.get_input_embeddings()(input_ids) + perturbation
        return self.encoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_of(self.encoder, input_ids),
        ).last_hidden_state


def position_ids_of(encoder: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The position ids `encoder` computes itself from `input_ids`: RoBERTa/XLM-R number real tokens from
    padding_idx + 1 and give padding padding_idx (their embeddings' own static method); BERT counts 0, 1, ...
    """
    embeddings = encoder.embeddings
    from_ids = getattr(embeddings, "create_position_ids_from_input_ids", None)
    if from_ids is not None:
        return from_ids(input_ids, embeddings.padding_idx)
    length = input_ids.shape[1]
    return torch.arange(length, device=input_ids.device).unsqueeze(0).expand_as(input_ids)


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
