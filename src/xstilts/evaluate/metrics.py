"""Every metric in one place. Each takes plain arrays and returns a float in [0, 1]."""

from __future__ import annotations

import faiss
import numpy as np

from xstilts.errors import unknown_name


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((predictions == labels).mean())


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(vectors)
    return vectors


def nearest_neighbours(queries: np.ndarray, keys: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the k most cosine-similar keys for each query (exact search with faiss)."""
    keys_unit = _unit(keys)
    index = faiss.IndexFlatIP(keys_unit.shape[1])
    index.add(keys_unit)
    _, ids = index.search(_unit(queries), k)
    return ids


def retrieval_accuracy(source: np.ndarray, target: np.ndarray) -> float:
    """Top-1 accuracy of finding row i of `target` for row i of `source` by cosine (Tatoeba protocol)."""
    if source.shape != target.shape:
        raise ValueError(f"parallel sets differ in shape: {source.shape} vs {target.shape}")
    if len(source) == 0:
        raise ValueError("retrieval over an empty set is undefined")
    top1 = nearest_neighbours(source, target, k=1)[:, 0]
    return float((top1 == np.arange(len(source))).mean())


METRICS = {"accuracy": accuracy, "retrieval_accuracy": retrieval_accuracy}


def get_metric(name: str):
    try:
        return METRICS[name]
    except KeyError:
        raise unknown_name("metric", name, METRICS) from None
