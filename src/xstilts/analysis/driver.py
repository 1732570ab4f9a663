"""`xstilts align RUN_DIR`: sentence-level alignment of every checkpoint of a finished run, layer by layer.

For the pretrained model, each intermediate checkpoint (`seed<N>/<intermediate>`) and each saved target
checkpoint (`seed<N>/<intermediate>__<target>`), all layers of parallel Bible verses (bible-retrieval
test split) in English and each language are extracted once through the representation cache, then
measured per layer and language pair (xx, en): retrieval accuracy in both directions (cosine, CSLS),
linear CKA and the cosine gap; and per layer, a language-identity probe over all languages.

Each checkpoint's rows go to the run's results store in one step (phase "alignment", target = checkpoint
name, metric = "<measure>@<layer>"), so a rerun skips finished checkpoints. The summary table gives the
mean over languages and the change from pretrained, with a bootstrap interval over sentences for
retrieval at the retrieval layer.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from xstilts.analysis import alignment
from xstilts.analysis.representations import (
    cached_layers,
    load_source_encoder,
    resolve_source,
    tokenizer_files_identity,
)
from xstilts.config import NONE_TASK, ExperimentConfig, load_config
from xstilts.errors import XstiltsError
from xstilts.io import atomic_file, cache_dir
from xstilts.models.checkpoint import is_complete
from xstilts.pipeline.store import ResultRow, ResultsStore

PHASE = "alignment"
PIVOT = "en"
PRETRAINED = "pretrained"
DEFAULT_EXAMPLES = 500
DEFAULT_LANGUAGES = ("de", "zh", "ar", "hi", "ru", "sw")  # when the run config names none
PAIR_MEASURES = (
    "retrieval_cosine_xx_en",
    "retrieval_cosine_en_xx",
    "retrieval_csls_xx_en",
    "retrieval_csls_en_xx",
    "cka",
    "cosine_gap",
)
PROBE = "language_probe"
PROBE_LANGUAGE = "all"  # the probe's row is over every language at once
MEASURES = (*PAIR_MEASURES, PROBE)
CI_MEASURE = "retrieval_cosine_xx_en"
_TOKENIZER_IDS: dict[str, str] = {}  # tokenizer.json file hash -> content identity


@dataclass(frozen=True)
class Checkpoint:
    """One model state to measure: `name` is the results-store target ("pretrained", "bible-next", ...)."""

    name: str
    source: str
    seed: int
    intermediate: str

    @property
    def step(self) -> str:
        return f"seed{self.seed}/{PHASE}/{self.name}"


@dataclass(frozen=True)
class Run:
    cfg: ExperimentConfig
    run_dir: Path
    config_hash: str


def open_run(path: str | Path) -> Run:
    """A run directory (its config.json) or the experiment YAML that made it."""
    path = Path(path)
    if path.is_file():
        cfg = load_config(path)
        return Run(cfg, cfg.run_dir, cfg.fingerprint())
    config_file = path / "config.json"
    if not config_file.is_file():
        raise XstiltsError(f"{path} is not a run directory (no config.json): run `xstilts run CONFIG` first")
    data = json.loads(config_file.read_text())
    config_hash = data.pop("config_hash", None)
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValueError as err:
        raise XstiltsError(f"{config_file} is not a valid run config: {err}") from None
    return Run(cfg, path, config_hash or cfg.fingerprint())


def list_checkpoints(run: Run) -> list[Checkpoint]:
    """pretrained, then per seed each intermediate checkpoint and the target checkpoints that exist."""
    cfg = run.cfg
    found = [Checkpoint(PRETRAINED, cfg.model, cfg.seeds[0], NONE_TASK)]
    for seed in cfg.seeds:
        folder = run.run_dir / "checkpoints" / f"seed{seed}"
        for intermediate in cfg.intermediate:
            if intermediate != NONE_TASK and is_complete(folder / intermediate):
                found.append(Checkpoint(intermediate, str(folder / intermediate), seed, intermediate))
            for target in cfg.targets:
                name = f"{intermediate}__{target}"
                if is_complete(folder / name):
                    found.append(Checkpoint(name, str(folder / name), seed, intermediate))
    return found


def choose_languages(run: Run, languages: Sequence[str] | None) -> list[str]:
    """The non-English languages to pair with English; unknown ones -> the available Bible languages."""
    from xstilts.tasks.bible import BIBLE_LANGUAGES

    if languages:
        chosen = list(languages)
    elif run.cfg.languages:
        chosen = list(run.cfg.languages)
    else:
        chosen = [lang for lang in DEFAULT_LANGUAGES if lang in BIBLE_LANGUAGES]
    unknown = [lang for lang in chosen if lang not in BIBLE_LANGUAGES]
    if unknown:
        raise XstiltsError(
            f"no parallel Bible text for {', '.join(unknown)}; available Bible languages: "
            f"{', '.join(BIBLE_LANGUAGES)}"
        )
    chosen = list(dict.fromkeys(lang for lang in chosen if lang != PIVOT))
    if not chosen:
        raise XstiltsError(f"alignment needs at least one language besides English, got {languages}")
    return chosen


def parallel_verses(languages: Sequence[str], examples: int) -> dict[str, list[str]]:
    """language -> verse texts, row i a translation of row i in every language (English included)."""
    from xstilts.tasks.bible import build_examples

    texts, ids = {}, None
    for lang in [PIVOT, *languages]:
        rows = build_examples("bible-retrieval", "test", lang, seed=0, limit=examples)
        row_ids = [row["id"] for row in rows]
        if ids is not None and row_ids != ids:
            raise XstiltsError(f"Bible verses of {lang} are not parallel to English")  # pragma: no cover
        ids = row_ids
        texts[lang] = [row["text"] for row in rows]
    return texts


def check_tokenizers(checkpoints: Sequence[Checkpoint]) -> None:
    """Every checkpoint must tokenize exactly as the pretrained model does: else comparing is naive."""
    reference = checkpoints[0]
    expected = _tokenizer_id(reference.source)
    for checkpoint in checkpoints[1:]:
        found = _tokenizer_id(checkpoint.source)
        if found != expected:
            raise XstiltsError(
                f"checkpoint {checkpoint.name} ({checkpoint.source}) has a different tokenizer from "
                f"{reference.name} ({reference.source}): {found} vs {expected}; its representations "
                "cannot be compared sentence by sentence with the pretrained model's"
            )


def _tokenizer_id(source: str) -> str:
    """The vocabulary file's hash; for tokenizer.json, the hash of what tokenizes (model, normalizer,
    pre-tokenizer, added tokens), since `save_pretrained` rewrites the file's other fields (truncation...).
    The content hash is remembered per file hash, in memory and in the cache directory."""
    directory = resolve_source(source)
    file_id = tokenizer_files_identity(directory)
    if not file_id.startswith("tokenizer.json:"):
        return file_id
    file_hash = file_id.partition(":")[2]
    if file_hash in _TOKENIZER_IDS:
        return _TOKENIZER_IDS[file_hash]
    memo = cache_dir() / "representations" / "tokenizer-ids" / f"{file_hash}.txt"
    digest = memo.read_text().strip() if memo.exists() else ""
    if len(digest) != 64:
        data = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
        keep = {key: data.get(key) for key in ("model", "normalizer", "pre_tokenizer", "added_tokens")}
        digest = hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()
        with atomic_file(memo) as handle:
            handle.write(digest + "\n")
    _TOKENIZER_IDS[file_hash] = f"tokenizer.json content:{digest}"
    return _TOKENIZER_IDS[file_hash]


def _max_length(source: str, wanted: int) -> int:
    """`wanted`, capped by the tokenizer's model_max_length (the tiny model has a short position table)."""
    config = resolve_source(source) / "tokenizer_config.json"
    if config.exists():
        limit = json.loads(config.read_text()).get("model_max_length")
        if isinstance(limit, int | float) and 0 < limit < wanted:
            return int(limit)
    return wanted


def measure_layer(vectors: dict[str, np.ndarray], languages: Sequence[str]) -> dict[tuple[str, str], float]:
    """(measure, language) -> value for one layer; `vectors` maps language -> (n, hidden)."""
    out: dict[tuple[str, str], float] = {}
    english = np.asarray(vectors[PIVOT], dtype=np.float32)
    for lang in languages:
        x = np.asarray(vectors[lang], dtype=np.float32)
        for scoring in ("cosine", "csls"):
            accuracy = alignment.retrieval_accuracy(x, english, scoring=scoring)
            out[f"retrieval_{scoring}_xx_en", lang] = accuracy["a_to_b"]
            out[f"retrieval_{scoring}_en_xx", lang] = accuracy["b_to_a"]
        out["cka", lang] = alignment.linear_cka(x, english)
        out["cosine_gap", lang] = alignment.cosine_gap(x, english)["gap"]
    folds = min(5, min(len(v) for v in vectors.values()))
    if folds >= 2:
        out[PROBE, PROBE_LANGUAGE] = alignment.language_probe_accuracy(vectors, folds=folds)
    return out


@dataclass
class AlignResult:
    checkpoints: list[Checkpoint]
    languages: list[str]
    layers: list[int]
    retrieval_layer: int
    computed: list[str]
    skipped: list[str]
    values: dict[str, dict[tuple[str, int, str], float]]  # step -> (measure, layer, language) -> value
    changes: dict[str, alignment.Interval]  # step -> change in mean CI_MEASURE at the retrieval layer


def align_run(
    run_dir: str | Path,
    *,
    languages: Sequence[str] | None = None,
    examples: int = DEFAULT_EXAMPLES,
    pooling: str = "mean",
    max_length: int = 128,
    batch_size: int = 64,
    layer: int | None = None,
    n_boot: int = 1000,
    console: Console | None = None,
) -> AlignResult:
    """Measure every checkpoint of the run (skipping those already in the store) and print the summary."""
    console = console or Console()
    from xstilts.models.pooling import POOLINGS

    if pooling not in POOLINGS:
        raise XstiltsError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    if examples < 2:
        raise XstiltsError(f"alignment needs at least 2 parallel verses, got --examples {examples}")
    run = open_run(run_dir)
    store = ResultsStore.in_run_dir(run.run_dir)
    checkpoints = list_checkpoints(run)
    langs = choose_languages(run, languages)
    check_tokenizers(checkpoints)
    texts = parallel_verses(langs, examples)
    n = len(texts[PIVOT])
    alignment.warn_if_small(n)
    console.print(
        f"[bold]xstilts align[/bold] {run.run_dir}: {len(checkpoints)} checkpoints, {n} parallel verses, "
        f"en + {', '.join(langs)}, {pooling} pooling"
    )
    length = _max_length(checkpoints[0].source, max_length)

    def vectors(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
        """language -> (layers, n, hidden); the encoder is loaded at most once per checkpoint."""
        loaded = []

        def loader(source, device):
            if not loaded:
                loaded.append(load_source_encoder(source, device))
            return loaded[0]

        return {
            lang: cached_layers(
                checkpoint.source,
                texts[lang],
                pooling=pooling,
                max_length=length,
                batch_size=batch_size,
                encoder_loader=loader,
            )
            for lang in texts
        }

    computed, skipped = [], []
    for checkpoint in checkpoints:
        if store.is_done(run.config_hash, checkpoint.step):
            console.print(f"  {checkpoint.name} (seed {checkpoint.seed}): already done, resuming")
            skipped.append(checkpoint.name)
            continue
        reps = vectors(checkpoint)
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", alignment.SmallSampleWarning)  # warned once above
            for index in range(reps[PIVOT].shape[0]):
                layer_values = measure_layer({lang: v[index] for lang, v in reps.items()}, langs)
                for (measure, lang), value in layer_values.items():
                    rows.append(_row(run, checkpoint, lang, f"{measure}@{index}", value))
        store.commit_step(run.config_hash, checkpoint.step, rows)
        console.print(f"  {checkpoint.name} (seed {checkpoint.seed}): {len(rows)} alignment rows")
        computed.append(checkpoint.name)

    values = _stored_values(store, run, checkpoints)
    n_layers = max((key[1] for by_key in values.values() for key in by_key), default=0) + 1
    layers = list(range(n_layers))
    retrieval_layer = _retrieval_layer(run.cfg, layer, n_layers)
    changes = _retrieval_changes(checkpoints, vectors, langs, retrieval_layer, n_boot)
    result = AlignResult(checkpoints, langs, layers, retrieval_layer, computed, skipped, values, changes)
    print_summary(result, console)
    return result


def _row(run: Run, checkpoint: Checkpoint, language: str, metric: str, value: float) -> ResultRow:
    return ResultRow(
        run_id=run.cfg.name,
        config_hash=run.config_hash,
        model=run.cfg.model,
        intermediate=checkpoint.intermediate,
        target=checkpoint.name,
        phase=PHASE,
        language=language,
        metric=metric,
        value=float(value),
        seed=checkpoint.seed,
    )


def _stored_values(store: ResultsStore, run: Run, checkpoints: Sequence[Checkpoint]):
    values: dict[str, dict[tuple[str, int, str], float]] = {}
    for checkpoint in checkpoints:
        by_key = values.setdefault(checkpoint.step, {})
        rows = store.rows(
            config_hash=run.config_hash, phase=PHASE, target=checkpoint.name, seed=checkpoint.seed
        )
        for row in rows:
            measure, _, at = row["metric"].rpartition("@")
            by_key[measure, int(at), row["language"]] = row["value"]
    return values


def _retrieval_layer(cfg: ExperimentConfig, layer: int | None, n_layers: int) -> int:
    if layer is None:
        layer = cfg.retrieval.layer
    if layer is None:
        from xstilts.tasks.registry import get_task

        layer = get_task("bible-retrieval").retrieval_layer
    if layer is None or not 0 <= layer < n_layers:
        return n_layers - 1
    return int(layer)


def _retrieval_changes(checkpoints, vectors, langs, layer: int, n_boot: int) -> dict[str, alignment.Interval]:
    """Change in mean xx->en cosine retrieval from pretrained, bootstrapped over the shared sentences."""

    def hits(checkpoint) -> list[np.ndarray]:
        reps = vectors(checkpoint)  # cache hits: no forward pass for checkpoints measured before
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", alignment.SmallSampleWarning)
            return [
                alignment.retrieval_hits(reps[lang][layer], reps[PIVOT][layer])["a_to_b"].astype(np.float64)
                for lang in langs
            ]

    def mean_accuracy(*per_language: np.ndarray) -> float:
        return float(np.mean([h.mean() for h in per_language]))

    before = hits(checkpoints[0])
    changes = {}
    for checkpoint in checkpoints[1:]:
        changes[checkpoint.step] = alignment.paired_difference_ci(
            mean_accuracy, before, hits(checkpoint), n_boot=n_boot
        )
    return changes


def _mean(values: dict, measure: str, layer: int, langs: Sequence[str]) -> float:
    if measure == PROBE:
        return values.get((PROBE, layer, PROBE_LANGUAGE), math.nan)
    found = [values[measure, layer, lang] for lang in langs if (measure, layer, lang) in values]
    return float(np.mean(found)) if found else math.nan


def print_summary(result: AlignResult, console: Console) -> None:
    """Per checkpoint and measure: mean over languages at the retrieval and last layer, the best layer,
    and the change from pretrained at the retrieval layer (with a 95% bootstrap interval for retrieval)."""
    last, at = result.layers[-1], result.retrieval_layer
    table = Table(
        title=f"alignment, mean over {', '.join(result.languages)} (vs en); probe: lower = more neutral"
    )
    for column in ("checkpoint", "measure", f"@{at}", f"change @{at}", f"@{last} (last)", "best layer"):
        text = column in ("checkpoint", "measure")
        table.add_column(column, justify="left" if text else "right", no_wrap=text)
    pretrained = result.values.get(result.checkpoints[0].step, {})
    seeds = len({checkpoint.seed for checkpoint in result.checkpoints}) > 1
    for checkpoint in result.checkpoints:
        values = result.values.get(checkpoint.step, {})
        label = f"{checkpoint.name} (seed {checkpoint.seed})" if seeds else checkpoint.name
        for number, measure in enumerate(MEASURES):
            by_layer = [_mean(values, measure, layer, result.languages) for layer in result.layers]
            if all(math.isnan(v) for v in by_layer):
                continue
            pick = np.nanargmin if measure == PROBE else np.nanargmax
            best = int(pick(by_layer))
            change = ""
            if checkpoint.name != PRETRAINED:
                delta = by_layer[at] - _mean(pretrained, measure, at, result.languages)
                change = f"{delta:+.3f}"
                interval = result.changes.get(checkpoint.step)
                if measure == CI_MEASURE and interval is not None:
                    change += f" [{interval.low:+.3f}, {interval.high:+.3f}]"
            table.add_row(
                label if number == 0 else "",
                measure,
                f"{by_layer[at]:.3f}",
                change,
                f"{by_layer[last]:.3f}",
                f"{best}: {by_layer[best]:.3f}",
                end_section=number == len(MEASURES) - 1,
            )
    console.print(table)
    if result.skipped:
        console.print(f"resumed: {len(result.skipped)} checkpoints already in the store, not recomputed")


__all__ = [
    "AlignResult",
    "Checkpoint",
    "align_run",
    "check_tokenizers",
    "choose_languages",
    "list_checkpoints",
    "measure_layer",
    "open_run",
    "parallel_verses",
]
