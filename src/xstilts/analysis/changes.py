"""Across checkpoints: means over seeds, the change from pretrained with bootstrap intervals, and the
correlation between alignment and zero-shot transfer, all written back to the results store.

Intervals are percentile bootstraps over the parallel sentences, resampled jointly for every language
pair and both checkpoints (the sentences are the same): for measures that are a mean over sentences
(retrieval hits, cosine gap) at every layer, from the per-sentence scores saved beside the store; for
linear CKA at the focus layer, from the cached representations (Gram matrices; at most 200 replicates,
as each costs O(n^2) per pair; a normal interval with the bootstrap standard error, because repeated
sentences bias resampled CKA). Mining F1, the language probe and word retrieval get the change without
an interval. With several seeds a checkpoint's value is the mean over seeds (per-sentence scores are
averaged first), against the one pretrained model.

Store layout: phase "alignment-change:<corpus>", target = checkpoint, language = pair label or "mean",
metric "<measure>@<layer>" (the change) with "/low" and "/high"; phase "alignment-correlation:<corpus>",
target = target task or "all", metric "<pearson|spearman>:<measure>@<layer>" with "/low", "/high", "/n".
Seed -1 marks values averaged over seeds.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.table import Table

from xstilts.analysis import alignment
from xstilts.analysis.measures import LOWER_IS_BETTER, PAIR_MEASURES, PROBE, WORD_MEASURES
from xstilts.config import NONE_TASK
from xstilts.pipeline.store import ResultRow, run_row

MEAN = "mean"
ALL = "all"
CKA_BOOT = 200
CORRELATED = ("retrieval_cosine_xx_en", "retrieval_csls_xx_en", "mining_f1", "cka", "cosine_gap", "word_weak")
HEADLINE = ("retrieval_cosine_xx_en", "retrieval_margin_xx_en", "mining_f1", "cka", "cosine_gap", "word_weak")
ALL_MEASURES = (*PAIR_MEASURES, *WORD_MEASURES, PROBE)
Key = tuple[str, int, str]  # (measure, layer, pair label)


@dataclass
class Summary:
    corpus: str
    names: list[str]  # checkpoint names, pretrained first
    intermediate: dict[str, str]  # checkpoint name -> its intermediate task
    labels: list[str]  # pair labels
    layers: list[int]
    focus: int
    values: dict[str, dict[Key, float]]  # name -> key -> mean over seeds
    changes: dict[str, dict[Key, alignment.Interval]]  # name -> (measure, layer, label | "mean") -> change
    correlations: list[tuple[str, str, alignment.CorrelationInterval]] = field(default_factory=list)
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def mean(self, name: str, measure: str, layer: int) -> float:
        found = self.values.get(name, {})
        if measure == PROBE:
            return found.get((PROBE, layer, ALL), math.nan)
        picked = [found[measure, layer, label] for label in self.labels if (measure, layer, label) in found]
        return float(np.mean(picked)) if picked else math.nan


def _seed_means(space, checkpoints) -> tuple[dict[str, dict[Key, float]], dict[str, dict[str, np.ndarray]]]:
    """name -> key -> value and name -> items key -> per-sentence scores, both averaged over seeds."""
    labels = {pair.label for pair in space.pairs} | {ALL}
    values: dict[str, dict[Key, list[float]]] = defaultdict(lambda: defaultdict(list))
    items: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    from xstilts.analysis.driver import load_items

    for checkpoint in checkpoints:
        rows = space.store.rows(
            config_hash=checkpoint.key, phase=space.phase, target=checkpoint.name, seed=checkpoint.seed
        )
        for row in rows:
            measure, _, at = row["metric"].rpartition("@")
            if row["language"] in labels:
                values[checkpoint.name][measure, int(at), row["language"]].append(row["value"])
        for key, scores in load_items(space.items_file(checkpoint)).items():
            items[checkpoint.name][key].append(scores)
    return (
        {name: {key: float(np.mean(v)) for key, v in by_key.items()} for name, by_key in values.items()},
        {name: {key: np.mean(v, axis=0) for key, v in by_key.items()} for name, by_key in items.items()},
    )


def _item_changes(before: dict, after: dict, labels, layers, focus, n_boot) -> dict[Key, alignment.Interval]:
    """Changes of per-sentence measures with intervals: the mean over pairs at every layer, each pair at
    the focus layer."""
    out = {}
    measures = sorted({key.partition("@")[0] for key in after})
    for measure in measures:
        for layer in layers:
            keys = [f"{measure}@{layer}|{label}" for label in labels]
            present = [k for k in keys if k in before and k in after]
            if len(present) == len(keys) and len({len(after[k]) for k in keys}) == 1:
                out[measure, layer, MEAN] = alignment.paired_mean_change_ci(
                    np.stack([before[k] for k in keys]), np.stack([after[k] for k in keys]), n_boot=n_boot
                )
            if layer == focus:
                for label, k in zip(labels, keys, strict=True):
                    if k in present:
                        out[measure, layer, label] = alignment.paired_mean_change_ci(
                            before[k], after[k], n_boot=n_boot
                        )
    return out


def _cka_change(space, pretrained, runs, focus: int, n_boot: int) -> alignment.Interval:
    """Change in mean linear CKA at the focus layer over pairs, averaged over the seeds in `runs`."""
    from xstilts.analysis.driver import EncoderOnce, pair_vectors

    def parallel(checkpoint):
        loader = EncoderOnce(checkpoint.source)
        out = []
        for pair in space.pairs:
            pool_x, pool_y = pair_vectors(space, checkpoint, pair, loader)
            gold = np.asarray(pair.corpus.gold, dtype=np.int64)
            out.append((pool_x[focus, gold[:, 0]], pool_y[focus, gold[:, 1]]))
        return out

    before = parallel(pretrained)
    return alignment.paired_cka_change_ci(before, [parallel(c) for c in runs], n_boot=min(n_boot, CKA_BOOT))


def _by_name(checkpoints) -> dict[str, list]:
    """Checkpoint name -> its seeds' checkpoints (pretrained left out)."""
    by_name: dict[str, list] = defaultdict(list)
    for checkpoint in checkpoints[1:]:
        by_name[checkpoint.name].append(checkpoint)
    return by_name


def _changes(space, checkpoints, values, items, layers, focus) -> dict[str, dict[Key, alignment.Interval]]:
    """Point changes of every stored measure, and intervals for the per-sentence ones."""
    labels = [pair.label for pair in space.pairs]
    pretrained = checkpoints[0]
    base = values.get(pretrained.name, {})
    out = {}
    n_boot = space.settings.n_boot
    for name in _by_name(checkpoints):
        found = {}
        for key, value in values.get(name, {}).items():  # point changes of everything, no interval
            if key in base:
                found[key] = alignment.Interval(value - base[key], math.nan, math.nan)
        for measure in {key[0] for key in found}:
            for layer in layers:
                deltas = [
                    found[measure, layer, label].estimate
                    for label in labels
                    if (measure, layer, label) in found
                ]
                if deltas and measure != PROBE:
                    found[measure, layer, MEAN] = alignment.Interval(
                        float(np.mean(deltas)), math.nan, math.nan
                    )
        found.update(
            _item_changes(items.get(pretrained.name, {}), items.get(name, {}), labels, layers, focus, n_boot)
        )
        out[name] = found
    return out


def _add_cka_changes(space, checkpoints, changes, focus: int) -> None:
    """The CKA change at the focus layer, with its interval, from the cached representations."""
    for name, runs in _by_name(checkpoints).items():
        changes[name]["cka", focus, MEAN] = _cka_change(
            space, checkpoints[0], runs, focus, space.settings.n_boot
        )


def _correlations(space, summary: Summary) -> list[tuple[str, str, alignment.CorrelationInterval]]:
    """Alignment at the focus layer vs zero-shot score, over (target, language) points: the target
    checkpoint's alignment when it was saved, else its intermediate checkpoint's (pretrained for none)."""
    from xstilts.report.tables import build_tables

    rows = space.run.layout.current_rows(phase="zero-shot")
    tables = build_tables(rows)
    if not tables.targets:
        return []
    pair_of = {
        pair.source_lang: pair.label for pair in space.pairs if pair.target_lang == space.settings.pivot
    }
    out = []
    for measure in CORRELATED:
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for (intermediate, target, lang), score in tables.per_language.items():
            label = pair_of.get(lang)
            name = next(
                (n for n in (f"{intermediate}__{target}", intermediate) if n in summary.values),
                "pretrained" if intermediate == NONE_TASK else None,
            )
            value = summary.values.get(name, {}).get((measure, summary.focus, label)) if label else None
            if value is not None:
                points[target].append((value, score))
                points[ALL].append((value, score))
        for scope, pairs in points.items():
            if len(pairs) < 3 or (scope != ALL and len(points) == 2):  # one target: its scope is "all"
                continue
            x, y = (np.array(side) for side in zip(*pairs, strict=True))
            for method in ("pearson", "spearman"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", alignment.SmallSampleWarning)
                    out.append((scope, measure, alignment.correlation_ci(x, y, method=method)))
    return out


def _summary_rows(space, summary: Summary) -> list[ResultRow]:
    from xstilts.analysis.driver import phase_name

    def row(kind, target, intermediate, language, metric, value) -> ResultRow:
        return run_row(
            space.run.cfg,
            space.run.config_hash,
            intermediate=intermediate,
            target=target,
            phase=phase_name(summary.corpus, kind),
            language=language,
            metric=metric,
            value=value,
            seed=-1,
        )

    out = []
    for name, found in summary.changes.items():
        for (measure, layer, label), interval in found.items():
            metric = f"{measure}@{layer}"
            parts = [("", interval.estimate)]
            if math.isfinite(interval.low):
                parts += [("/low", interval.low), ("/high", interval.high)]
            for suffix, value in parts:
                out.append(
                    row("alignment-change", name, summary.intermediate[name], label, metric + suffix, value)
                )
    for scope, measure, corr in summary.correlations:
        metric = f"{corr.method}:{measure}@{summary.focus}"
        for suffix, value in (("", corr.r), ("/low", corr.low), ("/high", corr.high), ("/n", corr.n)):
            if math.isfinite(value):
                out.append(row("alignment-correlation", scope, ALL, ALL, metric + suffix, value))
    return out


def focus_layer(space, n_layers: int) -> int:
    """The align section's layer, else the run's retrieval layer, else bible-retrieval's, else the last."""
    layer = space.settings.layer
    if layer is None:
        layer = space.run.cfg.retrieval.layer
    if layer is None:
        from xstilts.tasks.registry import get_task

        layer = get_task("bible-retrieval").retrieval_layer
    return int(layer) if layer is not None and 0 <= layer < n_layers else n_layers - 1


def summarise(space, checkpoints: Sequence) -> Summary:
    """Seed means, changes with intervals and correlations of the measured checkpoints, stored too."""
    values, items = _seed_means(space, checkpoints)
    n_layers = 1 + max((key[1] for by_key in values.values() for key in by_key), default=0)
    layers = list(range(n_layers))
    focus = focus_layer(space, n_layers)
    names = list(dict.fromkeys(c.name for c in checkpoints))
    summary = Summary(
        corpus=space.settings.corpus,
        names=names,
        intermediate={c.name: c.intermediate for c in checkpoints},
        labels=[pair.label for pair in space.pairs],
        layers=layers,
        focus=focus,
        values=values,
        changes=_changes(space, checkpoints, values, items, layers, focus),
    )
    _add_cka_changes(space, checkpoints, summary.changes, focus)
    summary.correlations = _correlations(space, summary)
    step = f"{space.phase}/{space.key}/summary/{space.settings.n_boot}/{focus}"
    space.store.commit_step(space.run.config_hash, step, _summary_rows(space, summary))
    return summary


# ------------------------------------------------------------------------------------------- printing


def _interval_text(interval: alignment.Interval | None) -> str:
    if interval is None:
        return ""
    text = f"{interval.estimate:+.3f}"
    if math.isfinite(interval.low):
        text += f" [{interval.low:+.3f}, {interval.high:+.3f}]"
    return text


def largest_changes(summary: Summary, measure: str) -> list[tuple[str, int, float, str, float]]:
    """Per checkpoint: (name, layer of the largest mean change, that change, language of the largest
    change at that layer, its change)."""
    out = []
    for name in summary.names[1:]:
        found = summary.changes.get(name, {})
        by_layer = [
            (layer, found[measure, layer, MEAN].estimate)
            for layer in summary.layers
            if (measure, layer, MEAN) in found
        ]
        if not by_layer:
            continue
        layer, delta = max(by_layer, key=lambda item: abs(item[1]))
        by_label = [
            (label, found[measure, layer, label].estimate)
            for label in summary.labels
            if (measure, layer, label) in found
        ]
        label, label_delta = max(by_label, key=lambda item: abs(item[1]))
        out.append((name, layer, delta, label, label_delta))
    return out


def print_summary(summary: Summary, console: Console) -> None:
    """The focus layer's values and changes with intervals, where the change was largest, correlations."""
    at = summary.focus
    table = Table(
        title=f"{summary.corpus} alignment, mean over {', '.join(summary.labels)}; "
        f"change from pretrained at layer {at} [95% bootstrap interval]; probe: lower = more neutral"
    )
    for column in ("checkpoint", "measure", f"@{at}", f"change @{at}", "best layer"):
        table.add_column(
            column, justify="left" if column in ("checkpoint", "measure") else "right", no_wrap=True
        )
    for name in summary.names:
        shown = [m for m in ALL_MEASURES if not math.isnan(summary.mean(name, m, at))]
        for number, measure in enumerate(shown):
            by_layer = [summary.mean(name, measure, layer) for layer in summary.layers]
            pick = np.nanargmin if measure in LOWER_IS_BETTER else np.nanargmax
            best = int(pick(by_layer))
            change = summary.changes.get(name, {}).get((measure, at, ALL if measure == PROBE else MEAN))
            table.add_row(
                name if number == 0 else "",
                measure,
                f"{by_layer[at]:.3f}",
                _interval_text(change),
                f"{best}: {by_layer[best]:.3f}",
                end_section=number == len(shown) - 1,
            )
    console.print(table)
    moved = Table(title="where alignment changed most (largest |change| of the mean over pairs)")
    for column in ("checkpoint", "measure", "layer", "change", "language", "its change"):
        moved.add_column(
            column, justify="left" if column in ("checkpoint", "measure", "language") else "right"
        )
    for measure in HEADLINE:
        for name, layer, delta, label, label_delta in largest_changes(summary, measure):
            moved.add_row(name, measure, str(layer), f"{delta:+.3f}", label, f"{label_delta:+.3f}")
    if moved.row_count:
        console.print(moved)
    if summary.correlations:
        corr = Table(title=f"alignment at layer {at} vs zero-shot score, over languages (and tasks)")
        for column in ("scope", "measure", "method", "r", "95% interval", "n"):
            corr.add_column(column, justify="left" if column in ("scope", "measure", "method") else "right")
        for scope, measure, c in summary.correlations:
            if math.isfinite(c.r):
                corr.add_row(
                    scope, measure, c.method, f"{c.r:+.2f}", f"[{c.low:+.2f}, {c.high:+.2f}]", str(c.n)
                )
            else:
                corr.add_row(scope, measure, c.method, "-", "one side is constant", str(c.n))
        console.print(corr)
    if summary.skipped:
        console.print(f"resumed: {len(summary.skipped)} checkpoints already in the store, not recomputed")
