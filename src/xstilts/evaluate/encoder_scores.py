"""Tasks scored straight on the encoder (no head, no training): retrieval and mining, one language at a time.

A kind that does not train names its procedure in `encoder_scorer`; `ENCODER_SCORERS` maps that name to
a function `(vectors, problem, spec, lang, settings) -> (scores, predictions)`, where `vectors(texts)`
embeds texts with the checkpoint's pooled hidden states, `problem` maps each of the task's splits to its
examples, and `predictions` are in the task's XTREME file format. Both follow google-research/xtreme:

- **Retrieval (Tatoeba)** searches en->xx by default, as XTREME's `third_party/evaluate_retrieval.py`
  (`similarity_search` in `utils_retrieve.py` indexes the xx sentences and queries with the English ones)
  and jiant's tatoeba task: for each English sentence, in order, the index of the nearest xx sentence by
  cosine; accuracy is the fraction that find their own translation. `direction: xx->en` (config
  `retrieval.direction`) swaps the two sides and is recorded in the run's config.
- **Mining (BUCC)**: ratio-margin candidates (k = 4 both ways, "max" retrieval) of the dev pools give the
  threshold that maximises F1 on the dev gold; test candidates at or above it are the predicted pairs,
  scored on the test gold (XTREME's `utils_retrieve.py` `bucc_optimize` / `bucc_extract`). Pools that
  hold only gold sentences (the hub's `bucc18` configs) make mining trivial, so they stop the run unless
  the config explicitly allows it (`allow_gold_only_bucc`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xstilts.errors import XstiltsError, unknown_name
from xstilts.evaluate.metrics import get_metric, nearest_neighbours
from xstilts.evaluate.mining import best_threshold, deduplicate, mine, mine_pairs
from xstilts.evaluate.task_eval import score_predictions, task_metrics
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec

DIRECTIONS = ("en->xx", "xx->en")
BUCC_HELP = (
    "get the original BUCC 2018 files (https://comparable.limsi.fr/bucc2018/: bucc2018-<lang>-en."
    "sample-gold.tar.bz2 and .training-gold.tar.bz2, as XTREME's scripts/download_data.sh does), put "
    "<lang>-en.sample.* and <lang>-en.training.* under <data_dir>/bucc2018/ and set data_dir; or set "
    "allow_gold_only_bucc: true to mine the gold-only pools anyway (F1 is then not comparable with "
    "published numbers, and the report says so)"
)

Vectors = Callable[[list[str]], np.ndarray]


def retrieval_direction(spec: TaskSpec, settings) -> str:
    """The configured direction, else the task's, else XTREME's en->xx."""
    direction = getattr(settings, "direction", None) or spec.retrieval_direction or DIRECTIONS[0]
    if direction not in DIRECTIONS:
        raise unknown_name("retrieval direction", direction, DIRECTIONS)
    return direction


def top1_retrieval(vectors: Vectors, problem: dict[str, list[dict]], spec: TaskSpec, lang: str, settings):
    """Tatoeba: queries in one language, the index in the other; predictions are one index per query."""
    (examples,) = (problem[split] for split in spec.splits)
    english = vectors([example["translation"] for example in examples])
    other = vectors([example["text"] for example in examples])
    queries, keys = (english, other) if retrieval_direction(spec, settings) == "en->xx" else (other, english)
    scores = {spec.metric: float(get_metric(spec.metric)(queries, keys, language=lang))}
    return scores, [int(i) for i in nearest_neighbours(queries, keys, k=1)[:, 0]]


def _pools_are_gold_only(problem: dict) -> bool:
    """True when every sentence of both pools is part of a gold pair: nothing for a miner to leave out."""
    sources = {str(source) for source, _ in problem["gold"]}
    targets = {str(target) for _, target in problem["gold"]}
    return {str(i) for i in problem["source"]} <= sources and {str(i) for i in problem["target"]} <= targets


def _candidates(vectors: Vectors, problem: dict):
    pools = []
    for side in ("source", "target"):
        ids, texts = list(problem[side]), list(problem[side].values())
        rows, kept_ids = deduplicate(texts, ids)
        pools += [vectors([texts[row] for row in rows]), kept_ids]
    return mine(*pools)


def margin_mining(vectors: Vectors, problem: dict[str, list[dict]], spec: TaskSpec, lang: str, settings):
    """BUCC: threshold tuned on dev, pairs mined on test; scores for every metric of the task."""
    (dev,), (test,) = problem["dev"], problem["test"]
    gold_only = [split for split, (part,) in problem.items() if _pools_are_gold_only(part)]
    if gold_only and not getattr(settings, "allow_gold_only_bucc", False):
        raise XstiltsError(
            f"{spec.name} {lang}: the {' and '.join(gold_only)} pools hold only gold pairs (the hub's bucc18 "
            f"configs do), so mining on them is degenerate and F1 comes out far above published numbers. "
            f"To fix: {BUCC_HELP}"
        )
    threshold = best_threshold(_candidates(vectors, dev), [tuple(pair) for pair in dev["gold"]])
    predicted = mine_pairs(_candidates(vectors, test), threshold)
    gold = get_kind(spec.kind).gold([test], spec)
    scores = score_predictions(task_metrics(spec), predicted, gold, lang)
    return scores, sorted(predicted)


ENCODER_SCORERS = {"top1_retrieval": top1_retrieval, "margin_mining": margin_mining}


def score_on_encoder(vectors: Vectors, problem: dict, spec: TaskSpec, lang: str, settings):
    """(scores, predictions) of a task that is scored straight on the encoder (see the module docstring)."""
    name = get_kind(spec.kind).encoder_scorer
    try:
        scorer = ENCODER_SCORERS[name]
    except KeyError:
        raise unknown_name(f"encoder scorer of kind {spec.kind}", str(name), ENCODER_SCORERS) from None
    return scorer(vectors, problem, spec, lang, settings)
