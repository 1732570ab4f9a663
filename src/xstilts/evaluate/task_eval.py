"""Scoring a trained head on one task and language: logits -> the kind's predictions -> every metric.

The same function selects the best English dev step during training and scores each zero-shot language,
so dev and test numbers are computed the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from xstilts.evaluate.inference import predict_logits
from xstilts.evaluate.metrics import get_metric
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec


def task_metrics(spec: TaskSpec) -> tuple[str, ...]:
    """The headline metric first, then the extra ones."""
    return (spec.metric, *(name for name in spec.extra_metrics if name != spec.metric))


def _takes_language(metric) -> bool:
    try:
        return "language" in inspect.signature(metric).parameters
    except (TypeError, ValueError):
        return False


def score_predictions(names: Sequence[str], predictions, gold, language: str | None) -> dict[str, float]:
    """Each metric of `names` on one set of predictions; metrics that depend on the language get it."""
    scores = {}
    for name in names:
        metric = get_metric(name)
        kwargs = {"language": language} if _takes_language(metric) else {}
        scores[name] = float(metric(predictions, gold, **kwargs))
    return scores


def predict_task(
    model, tokenizer, spec: TaskSpec, examples: list[dict], features: list[dict], batch_size: int
):
    """The kind's decoded predictions, in the form its metrics take: answer text by question id (span QA),
    tag names per word (tagging), label indices (classification, multiple choice).

    `features` are `examples` encoded by the task's kind for evaluation (`for_training=False`).
    """
    kind = get_kind(spec.kind)
    logits = predict_logits(model, kind, tokenizer, features, spec.head_name, batch_size)
    return kind.decode(logits, features, examples, spec)


def evaluate_task(
    model,
    tokenizer,
    spec: TaskSpec,
    examples: list[dict],
    features: list[dict],
    batch_size: int,
    language: str | None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """{metric: value} for `spec.metric` and `spec.extra_metrics` (or `metrics`) on encoded `examples`.

    To keep the predictions as well (e.g. to write them out), call `predict_task` and `score_predictions`.
    """
    predictions = predict_task(model, tokenizer, spec, examples, features, batch_size)
    gold = get_kind(spec.kind).gold(examples, spec)
    return score_predictions(metrics or task_metrics(spec), predictions, gold, language)
