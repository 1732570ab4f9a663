"""Batched, length-sorted inference: task logits and pooled hidden states.

Under `accelerate launch` the batches are shared among the processes and their outputs gathered
(`distributed.shared_map`): each feature goes through the model once, and every process gets all outputs.
"""

from __future__ import annotations

import numpy as np
import torch

from xstilts.distributed import shared_map
from xstilts.models.pooling import pool
from xstilts.tasks.kinds import sequence_lengths


def _length_sorted_batches(features: list[dict], batch_size: int):
    order = np.argsort(sequence_lengths(features), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict_logits(
    model, kind, tokenizer, features: list[dict], head: str, batch_size: int
) -> np.ndarray | list[np.ndarray]:
    """Logits for every feature, in input order; batches are length-sorted so padding stays small.

    Sequence-level kinds get one (features, outputs) array; token-level kinds a list with one
    (tokens, outputs) array per feature, cut to the feature's own length (batches are right-padded).
    """
    was_training = model.training
    model.eval()
    per_token = kind.head_level == "token"
    device, out = _device(model), [None] * len(features)

    def batch_logits(rows) -> np.ndarray:
        batch = kind.collate([features[i] for i in rows], tokenizer)
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device), head=head)
        return kind.logits_shape(logits, batch).float().cpu().numpy()

    batches = list(_length_sorted_batches(features, batch_size))
    for rows, logits in zip(batches, shared_map(batch_logits, batches), strict=True):
        for i, row in zip(rows, logits, strict=True):
            out[i] = row[: len(features[i]["input_ids"])] if per_token else row
    model.train(was_training)
    if per_token:
        return out
    return np.stack(out) if out else np.zeros((0,))


@torch.inference_mode()
def embed(
    encoder, kind, tokenizer, features: list[dict], layer: int, pooling: str, batch_size: int
) -> np.ndarray:
    """Pooled `hidden_states[layer]` (0 = embeddings output) for every feature, in input order."""
    n_layers = encoder.config.num_hidden_layers
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer {layer} does not exist: the encoder has hidden_states 0..{n_layers}")
    was_training = encoder.training
    encoder.eval()
    device = _device(encoder)
    out = np.zeros((len(features), encoder.config.hidden_size), dtype=np.float32)

    def batch_vectors(rows) -> np.ndarray:
        batch = kind.collate([features[i] for i in rows], tokenizer)
        mask = batch["attention_mask"].to(device)
        states = encoder(
            input_ids=batch["input_ids"].to(device), attention_mask=mask, output_hidden_states=True
        )
        return pool(states.hidden_states[layer], mask, pooling).float().cpu().numpy()

    batches = list(_length_sorted_batches(features, batch_size))
    for rows, vectors in zip(batches, shared_map(batch_vectors, batches), strict=True):
        out[rows] = vectors
    encoder.train(was_training)
    return out
