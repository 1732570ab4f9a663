"""`xstilts align CONFIG_OR_RUN_DIR`: alignment of every checkpoint of a run, layer by layer.

Hops: the run's checkpoints (`list_checkpoints`: pretrained, `seed<N>/<intermediate>`,
`seed<N>/<intermediate>__<target>`) -> parallel data per language pair (`parallel.load_parallel`) ->
all layers of each sentence pool through the representation cache (one forward pass per batch) ->
`measures.measure_pair` per layer and pair, the language probe per layer, word retrieval per pair ->
one results-store step per checkpoint (phase "alignment:<corpus>", target = checkpoint name,
language = pair label, metric = "<measure>@<layer>") plus per-sentence scores in an .npz beside the
store, so a rerun skips finished checkpoints -> `changes.summarise` (means over seeds, changes from
pretrained with bootstrap intervals, correlation with zero-shot scores), also stored -> the summary
printed here and the plots of `xstilts report`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from xstilts.analysis import alignment
from xstilts.analysis.measures import PROBE, LayerPair, Measured, language_probe, measure_pair
from xstilts.analysis.representations import (
    cached_layers,
    center,
    load_source_encoder,
    resolve_source,
    tokenizer_files_identity,
)
from xstilts.config import NONE_TASK, AlignConfig, ExperimentConfig, load_config
from xstilts.errors import XstiltsError
from xstilts.io import atomic_file, cache_dir
from xstilts.models.checkpoint import checkpoint_problem
from xstilts.pipeline.layout import ATTACK_STEP_KEYS, STRATEGIES_KEY, RunLayout
from xstilts.pipeline.store import ResultRow, ResultsStore, run_row

PHASE = "alignment"
PRETRAINED = "pretrained"
PROBE_LANGUAGE = "all"  # the probe's row is over every language at once
DEFAULT_LANGUAGES = (
    "de",
    "zh",
    "ar",
    "hi",
    "ru",
    "sw",
)  # when neither the align section nor the run names any
_TOKENIZER_IDS: dict[str, str] = {}  # tokenizer.json file hash -> content identity


def phase_name(corpus: str, kind: str = PHASE) -> str:
    """Store phase of alignment rows ("alignment:bible") and of their summaries ("alignment-change:...")."""
    return f"{kind}:{corpus}"


@dataclass(frozen=True)
class Checkpoint:
    """One model state to measure: `name` is the results-store target ("pretrained", "bible-next", ...)."""

    name: str
    source: str
    seed: int
    intermediate: str
    key: str  # the key of the pipeline step that made it: its alignment rows are stored under it


@dataclass(frozen=True)
class Run:
    cfg: ExperimentConfig
    run_dir: Path
    config_hash: str  # the run's fingerprint: summaries over several checkpoints are stored under it

    @functools.cached_property
    def layout(self) -> RunLayout:
        return RunLayout(self.cfg, self.run_dir)


@dataclass(frozen=True)
class Pair:
    """A language pair and its parallel data; `label` is what the store's language column holds."""

    source_lang: str
    target_lang: str
    label: str
    corpus: object  # parallel.ParallelCorpus


def open_run(path: str | Path, console: Console | None = None) -> Run:
    """A run directory (its config.json), or an experiment YAML: its run is made or resumed first."""
    path = Path(path)
    if path.is_file():
        cfg = load_config(path)
        from xstilts.pipeline.runner import Pipeline

        Pipeline(cfg, console or Console()).run()  # resumes: finished steps are skipped
        return Run(cfg, cfg.run_dir, cfg.fingerprint())
    config_file = path / "config.json"
    if not config_file.is_file():
        raise XstiltsError(
            f"{path} is neither an experiment YAML nor a run directory (no config.json): "
            "run `xstilts run CONFIG` first, or pass the YAML"
        )
    data = json.loads(config_file.read_text())
    config_hash = data.pop("config_hash", None)
    data.pop("step_keys", None)  # recomputed from the config by RunLayout
    data.pop(ATTACK_STEP_KEYS, None)  # written by `xstilts attack`, read by the report
    data.pop(STRATEGIES_KEY, None)  # recomputed from the config by RunLayout, read by the report
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValueError as err:
        raise XstiltsError(f"{config_file} is not a valid run config: {err}") from None
    return Run(cfg, path, config_hash or cfg.fingerprint())


def list_checkpoints(run: Run, missing: list[str] | None = None) -> list[Checkpoint]:
    """pretrained, then per seed each intermediate checkpoint and the target checkpoints that exist, of the
    run's current config (`RunLayout`: checkpoints of earlier settings are not measured).

    Nothing is skipped silently: a damaged checkpoint is an error naming it and how to redo it, and the
    names of checkpoints the config makes but that are not there (yet) are added to `missing`."""
    cfg, layout = run.cfg, run.layout
    found = [Checkpoint(PRETRAINED, cfg.model, cfg.seeds[0], NONE_TASK, layout.pretrained_key)]
    for step in layout.steps():
        if not step.trains or (step.target is not None and not _saves_checkpoint(cfg, step.target)):
            continue
        folder = layout.checkpoint_dir(step)
        if _usable(folder, run):
            found.append(Checkpoint(step.label, str(folder), step.seed, step.intermediate, step.key))
        elif missing is not None:
            missing.append(f"{step.label} (seed {step.seed})")
    return found


def _saves_checkpoint(cfg: ExperimentConfig, target: str) -> bool:
    from xstilts.tasks.kinds import get_kind
    from xstilts.tasks.registry import get_task

    return cfg.save_target_checkpoints and get_kind(get_task(target).kind).trains


def _usable(path: Path, run: Run) -> bool:
    """False when absent; a checkpoint that is there but damaged is an error, never skipped."""
    if not path.exists():
        return False
    problem = checkpoint_problem(path)
    if problem is not None:
        raise XstiltsError(
            f"checkpoint {path} {problem}; to redo it, rerun `xstilts run` with this run's config "
            f"(output_dir {run.cfg.output_dir}, name {run.cfg.name}): a step whose checkpoint is damaged is "
            "redone; then run `xstilts align` again"
        )
    return True


def settings_for(run: Run, **overrides) -> AlignConfig:
    """The run's `align` section with command-line overrides (None = keep), validated again."""
    merged = run.cfg.align.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged[key] = merged[key] | value  # a nested section (words): only the given fields change
        elif value is not None:
            merged[key] = value
    try:
        return AlignConfig.model_validate(merged)
    except ValueError as err:
        raise XstiltsError(f"invalid align settings: {err}") from None


def choose_pairs(run: Run, settings: AlignConfig) -> list[tuple[str, str]]:
    """(language, pivot) for each chosen language, then the extra pairs; English itself is skipped."""
    languages = settings.languages or run.cfg.languages or list(DEFAULT_LANGUAGES)
    pairs = [(lang, settings.pivot) for lang in dict.fromkeys(languages) if lang != settings.pivot]
    pairs += [tuple(pair.split("-")) for pair in settings.pairs]
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        raise XstiltsError(f"alignment needs a language besides {settings.pivot}, got {languages}")
    return pairs


def load_pairs(run: Run, settings: AlignConfig) -> list[Pair]:
    """The parallel data of every pair; a pair the corpus lacks -> an error listing the available ones."""
    from xstilts.analysis.parallel import load_parallel

    out = []
    for source_lang, target_lang in choose_pairs(run, settings):
        corpus = load_parallel(
            settings.corpus,
            source_lang,
            target_lang,
            examples=settings.examples,
            data_dir=run.cfg.data_dir,
            hub_mirror=run.cfg.hub_mirror,
        )
        label = source_lang if target_lang == settings.pivot else f"{source_lang}-{target_lang}"
        out.append(Pair(source_lang, target_lang, label, corpus))
    return out


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


# ------------------------------------------------------------------------------------------ word pairs


def word_pairs_for(
    run: Run, pairs: Sequence[Pair], settings: AlignConfig, saved: Path | None = None
) -> dict[str, list[tuple[str, str]]]:
    """pair label -> (word in the first language, its translation) from word alignment or dictd files.

    eflomal's sampler takes no seed, so aligned pairs differ slightly between runs: they are made once,
    saved to `saved` (atomically) and reused, so every checkpoint is measured on the same words.
    """
    words = settings.words
    if words.source == "none":
        return {}
    if saved is not None and saved.exists():
        return {
            label: [tuple(pair) for pair in found] for label, found in json.loads(saved.read_text()).items()
        }
    out = _make_word_pairs(run, pairs, settings)
    if saved is not None:
        with atomic_file(saved) as handle:
            json.dump(out, handle, ensure_ascii=False)
    return out


def _make_word_pairs(
    run: Run, pairs: Sequence[Pair], settings: AlignConfig
) -> dict[str, list[tuple[str, str]]]:
    words = settings.words
    from xstilts.analysis import words as word_tools

    out = {}
    for pair in pairs:
        if words.source == "alignment":
            from xstilts.analysis.word_alignment import aligned_word_pairs

            corpus = pair.corpus
            if words.sentences is not None and words.sentences != settings.examples:
                from xstilts.analysis.parallel import load_parallel

                corpus = load_parallel(
                    settings.corpus,
                    pair.source_lang,
                    pair.target_lang,
                    examples=words.sentences,
                    data_dir=run.cfg.data_dir,
                    hub_mirror=run.cfg.hub_mirror,
                )
            source_texts, target_texts = corpus.aligned()
            found = aligned_word_pairs(
                source_texts, target_texts, min_count=words.min_count, max_pairs=words.max_pairs
            )
        else:
            found = _dictionary_pairs(pair, settings, word_tools)
        if found:
            out[pair.label] = found
    return out


def _dictionary_pairs(pair: Pair, settings: AlignConfig, word_tools) -> list[tuple[str, str]]:
    """dictd dictionaries go from English (the pivot) to a language; pairs are turned to (xx, en)."""
    dictionaries = settings.words.dictionaries
    if pair.target_lang != "en" or pair.source_lang not in dictionaries:
        raise XstiltsError(
            f"no dictd dictionary for {pair.source_lang}-{pair.target_lang}: `words.dictionaries` names "
            f"{', '.join(sorted(dictionaries)) or 'none'} (English -> language .index files, e.g. "
            "/usr/share/dictd/freedict-eng-deu.index from Debian's dict-freedict-eng-deu)"
        )
    english_to_xx = word_tools.word_pairs(
        word_tools.load_dictd(dictionaries[pair.source_lang]), max_pairs=settings.words.max_pairs
    )
    return sorted((xx, english) for english, xx in english_to_xx)


# ------------------------------------------------------------------------------------- measurement


def alignment_key(settings: AlignConfig, pairs: Sequence[Pair]) -> str:
    """Hash of what changes the per-checkpoint measurements (not the interval layer or bootstrap size)."""
    payload = settings.model_dump(mode="json", exclude={"layer", "n_boot"})
    payload["pairs"] = [pair.label for pair in pairs]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Workspace:
    """Everything one `align` call shares across checkpoints."""

    run: Run
    settings: AlignConfig
    checkpoints: list[Checkpoint]
    pairs: list[Pair]
    word_pairs: dict[str, list[tuple[str, str]]]
    key: str
    store: ResultsStore
    max_length: int

    @property
    def phase(self) -> str:
        return phase_name(self.settings.corpus)

    def step(self, checkpoint: Checkpoint) -> str:
        return f"seed{checkpoint.seed}/{self.phase}/{self.key}/{checkpoint.name}"

    @property
    def folder(self) -> Path:
        """Beside the store: per-sentence scores and the word pairs of these settings."""
        return self.run.run_dir / "alignment" / f"{self.settings.corpus}-{self.key}"

    def items_file(self, checkpoint: Checkpoint) -> Path:
        return self.folder / f"seed{checkpoint.seed}-{checkpoint.name}-{checkpoint.key}.npz"


class EncoderOnce:
    """Loads a checkpoint's encoder on first use only (a fully cached checkpoint loads nothing)."""

    def __init__(self, source: str):
        self.source, self.loaded = source, None

    def __call__(self, source=None, device=None):
        if self.loaded is None:
            import torch

            chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.loaded = load_source_encoder(self.source, chosen)
        return self.loaded


def pair_vectors(space: Workspace, checkpoint: Checkpoint, pair: Pair, loader: Callable) -> tuple:
    """(pool_x, pool_y): float32 [layers, pool size, hidden] of both sides, centred per language if asked."""
    settings = space.settings
    out = []
    for texts in (pair.corpus.source, pair.corpus.target):
        vectors = cached_layers(
            checkpoint.source,
            texts,
            pooling=settings.pooling,
            max_length=space.max_length,
            batch_size=settings.batch_size,
            encoder_loader=loader,
        )
        out.append(center(vectors) if settings.center else np.asarray(vectors, dtype=np.float32))
    return tuple(out)


def measure_checkpoint(
    space: Workspace, checkpoint: Checkpoint, advance: Callable[[str], None] = lambda label: None
) -> tuple[list[ResultRow], dict]:
    """All rows of one checkpoint and its per-sentence scores ("<measure>@<layer>|<label>" -> array);
    `advance(label)` is called after each language pair (the progress bar)."""
    loader = EncoderOnce(checkpoint.source)
    values: dict[tuple[str, int, str], Measured] = {}
    probe_inputs: dict[str, np.ndarray] = {}  # language -> [layers, n, hidden] of its parallel rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", alignment.SmallSampleWarning)  # warned once, with the number
        for pair in space.pairs:
            pool_x, pool_y = pair_vectors(space, checkpoint, pair, loader)
            gold = np.asarray(pair.corpus.gold, dtype=np.int64)
            x, y = pool_x[:, gold[:, 0]], pool_y[:, gold[:, 1]]
            probe_inputs.setdefault(pair.source_lang, x)
            probe_inputs.setdefault(pair.target_lang, y)
            mining = space.settings.mining and len(pair.corpus.source) > 1
            for layer in range(x.shape[0]):
                layer_pair = LayerPair(
                    x[layer],
                    y[layer],
                    pool_x[layer] if mining else None,
                    pool_y[layer] if mining else None,
                    [tuple(g) for g in gold] if mining else (),
                )
                for measure, measured in measure_pair(layer_pair).items():
                    values[measure, layer, pair.label] = measured
            if pair.label in space.word_pairs:
                values.update(_word_values(space, checkpoint, pair, loader, x.shape[0]))
            advance(pair.label)
        n_layers = next(iter(probe_inputs.values())).shape[0]
        for layer in range(n_layers):
            probe = language_probe({lang: v[layer] for lang, v in probe_inputs.items()})
            if probe is not None:
                values[PROBE, layer, PROBE_LANGUAGE] = probe
    rows = [
        _row(space, checkpoint, label, f"{measure}@{layer}", measured.value)
        for (measure, layer, label), measured in values.items()
    ]
    items = {
        f"{measure}@{layer}|{label}": measured.items
        for (measure, layer, label), measured in values.items()
        if measured.items is not None
    }
    return rows, items


def _word_values(space: Workspace, checkpoint: Checkpoint, pair: Pair, loader, n_layers: int) -> dict:
    from xstilts.analysis.words import measure_words

    encoder, tokenizer = loader()
    found = measure_words(
        encoder, tokenizer, space.word_pairs[pair.label], list(range(n_layers)), k=space.settings.words.k
    )
    return {
        (f"word_{setting}", layer, pair.label): Measured(value) for (setting, layer), value in found.items()
    }


def _row(space: Workspace, checkpoint: Checkpoint, language: str, metric: str, value: float) -> ResultRow:
    return run_row(
        space.run.cfg,
        checkpoint.key,
        intermediate=checkpoint.intermediate,
        target=checkpoint.name,
        phase=space.phase,
        language=language,
        metric=metric,
        value=value,
        seed=checkpoint.seed,
    )


def save_items(path: Path, items: dict[str, np.ndarray]) -> None:
    with atomic_file(path, mode="wb") as handle:
        np.savez(handle, **items)


def load_items(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


# ------------------------------------------------------------------------------------------ the command


def prepare(run_or_config: str | Path, console: Console | None = None, **overrides) -> Workspace:
    """Open the run, resolve settings, pairs and word pairs; checks come before any model is loaded."""
    console = console or Console()
    run = open_run(run_or_config, console)
    settings = settings_for(run, **overrides)
    missing: list[str] = []
    checkpoints = list_checkpoints(run, missing)
    if missing:
        console.print(f"[yellow]not measured, no checkpoint (yet): {', '.join(missing)}[/yellow]")
    check_tokenizers(checkpoints)
    pairs = load_pairs(run, settings)
    n = min(len(pair.corpus.gold) for pair in pairs)
    alignment.warn_if_small(n)
    space = Workspace(
        run=run,
        settings=settings,
        checkpoints=checkpoints,
        pairs=pairs,
        word_pairs={},
        key=alignment_key(settings, pairs),
        store=ResultsStore.in_run_dir(run.run_dir),
        max_length=_max_length(checkpoints[0].source, settings.max_length),
    )
    space.word_pairs = word_pairs_for(run, pairs, settings, space.folder / "word_pairs.json")
    for label, found in space.word_pairs.items():
        alignment.warn_if_small(len(found), what=f"word pairs for {label}")
    return space


def align_run(run_or_config: str | Path, console: Console | None = None, **overrides):
    """Measure every checkpoint not yet in the store, then summarise, store and print the summary."""
    from xstilts.analysis.changes import print_summary, summarise

    console = console or Console()
    space = prepare(run_or_config, console, **overrides)
    checkpoints = space.checkpoints
    settings = space.settings
    console.print(
        f"[bold]xstilts align[/bold] {space.run.run_dir}: {len(checkpoints)} checkpoints, "
        f"{settings.corpus} ({', '.join(p.label for p in space.pairs)}; pivot {settings.pivot}), "
        f"{min(len(p.corpus.gold) for p in space.pairs)}+ parallel sentences, {settings.pooling} pooling"
        + (", centred per language" if settings.center else "")
    )
    computed, skipped = [], []
    for checkpoint in checkpoints:
        label = f"{checkpoint.name} (seed {checkpoint.seed})"
        step = space.step(checkpoint)
        if space.store.is_done(checkpoint.key, step) and space.items_file(checkpoint).exists():
            console.print(f"  {label}: already done, resuming")
            skipped.append(checkpoint)
            continue
        with Progress(*Progress.get_default_columns(), console=console, transient=True) as progress:
            bar = progress.add_task(f"  {label}", total=len(space.pairs))
            rows, items = measure_checkpoint(
                space,
                checkpoint,
                lambda pair, bar=bar, label=label: progress.update(
                    bar, advance=1, description=f"  {label}: {pair}"
                ),
            )
        save_items(space.items_file(checkpoint), items)  # before the step mark: a done step has its items
        space.store.commit_step(checkpoint.key, step, rows)
        console.print(f"  {label}: {len(rows)} alignment rows")
        computed.append(checkpoint)
    summary = summarise(space, checkpoints)
    summary.computed, summary.skipped = computed, skipped
    print_summary(summary, console)
    return summary


__all__ = [
    "Checkpoint",
    "Pair",
    "Workspace",
    "align_run",
    "check_tokenizers",
    "choose_pairs",
    "list_checkpoints",
    "measure_checkpoint",
    "open_run",
    "prepare",
]
