"""Metrics against values computed by hand."""

import numpy as np
import pytest

from xstilts.errors import XstiltsError
from xstilts.evaluate.metrics import accuracy, get_metric, nearest_neighbours, retrieval_accuracy


def test_accuracy_by_hand():
    assert accuracy(np.array([1, 0, 2, 2]), np.array([1, 1, 2, 0])) == 0.5
    with pytest.raises(ValueError):
        accuracy(np.array([1]), np.array([1, 2]))
    with pytest.raises(ValueError):
        accuracy(np.array([]), np.array([]))


def test_retrieval_recovers_a_planted_permutation():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(200, 16)).astype(np.float32)
    source = target + 0.01 * rng.normal(size=target.shape).astype(np.float32)
    assert retrieval_accuracy(source, target) == 1.0
    perm = rng.permutation(200)
    assert (nearest_neighbours(source[perm], target)[:, 0] == perm).all()
    # scale does not matter for cosine; shuffling half the targets costs exactly those rows
    assert retrieval_accuracy(3.0 * source, target) == 1.0
    shuffled = target.copy()
    shuffled[:100] = target[:100][::-1]
    assert retrieval_accuracy(source, shuffled) == pytest.approx(0.5)


def test_retrieval_by_hand_on_two_dimensions():
    source = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]], dtype=np.float32)
    target = np.array([[1.0, 0.05], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    # nearest by cosine: row0 -> 0 (right), row1 -> 2 (wrong), row2 -> 0 (wrong): 1/3
    assert retrieval_accuracy(source, target) == pytest.approx(1 / 3)


def test_unknown_metric_lists_valid():
    with pytest.raises(XstiltsError, match="accuracy"):
        get_metric("f2")
