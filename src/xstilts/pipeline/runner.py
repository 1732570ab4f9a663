"""The experiment, phase by phase: pretrained -> intermediate -> target -> zero-shot evaluation.

Each step is skipped when the results store says it finished under its key (`layout.RunLayout`: what
determines its result), so an interrupted run resumes where it stopped and a changed config redoes only
the steps whose inputs changed. One intermediate model is trained per (seed, intermediate task) and reused
for every target.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from xstilts.config import DATA_STRATEGIES, ExperimentConfig, PhaseConfig
from xstilts.data.mlm import raw_text
from xstilts.distributed import is_main_process, main_process_writes
from xstilts.evaluate import xtreme
from xstilts.evaluate.encoder_scores import retrieval_direction, score_on_encoder
from xstilts.evaluate.inference import embed
from xstilts.evaluate.task_eval import predict_task, score_predictions, task_metrics
from xstilts.io import atomic_file
from xstilts.models.checkpoint import build_model, checkpoint_problem, link_checkpoint, save_checkpoint
from xstilts.models.loading import enable_gradient_checkpointing, resolve_model
from xstilts.models.mlm_head import mlm_head_from_checkpoint, pretrained_mlm_head_state
from xstilts.pipeline.layout import ATTACK_STEP_KEYS, STRATEGIES_KEY, RunLayout, Step
from xstilts.pipeline.store import ResultRow, run_row
from xstilts.pipeline.training_data import intermediate_examples
from xstilts.tasks.domains import domain_of, in_domains, shift_languages
from xstilts.tasks.kinds import MaskedLM, get_kind, shared_heads
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples, subset, task_labels
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import (
    TaskStream,
    freeze_word_embeddings,
    remove_training_checkpoint,
    train_task,
    train_tasks,
)
from xstilts.train.tracking import Tracking, require_tracker

DATA_SEED = 0  # the benchmark itself is fixed; run seeds only change training


class Pipeline:
    def __init__(self, cfg: ExperimentConfig, console: Console | None = None):
        require_tracker(cfg.tracking)  # a missing tracker package fails here, before any training
        self.cfg = cfg
        self.console = console or Console()
        self.console.quiet |= not is_main_process()  # under `accelerate launch`, one process reports
        self.layout = RunLayout(cfg)
        self.run_dir = cfg.run_dir
        self.store = self.layout.store
        self.store.commit_step = main_process_writes(self.store.commit_step)  # one writer (distributed.py)

    # ---------------------------------------------------------------- helpers
    def _row(self, step: Step, target: str, phase: str, language: str, metric: str, value) -> ResultRow:
        """A row written by `step` (stored under its key)."""
        return run_row(
            self.cfg,
            step.key,
            intermediate=step.intermediate,
            target=target,
            phase=phase,
            language=language,
            metric=metric,
            value=value,
            seed=step.seed,
        )

    def _tracking(self, step: Step) -> Tracking | None:
        """Where one training logs with the config's `tracking`: `logs/<step name>` of the run dir."""
        if self.cfg.tracking == "none":
            return None
        return Tracking(self.cfg.tracking, self.run_dir / "logs", step.name, experiment=self.cfg.name)

    def _spec(self, name: str) -> TaskSpec:
        """The task, its tag set filled in where that comes from the training file (CCG's supertags)."""
        spec = get_task(name)
        if not spec.labels and get_kind(spec.kind).tags_from_train_file:
            spec = replace(spec, labels=task_labels(spec, getattr(self.cfg, "data_dir", None)))
        return spec

    def _load_examples(
        self,
        spec: TaskSpec,
        split: str,
        lang: str,
        limit: int | None,
        seed: int = DATA_SEED,
        domains: tuple[str, ...] = (),
    ) -> list[dict]:
        """Examples of one split; with `domains`, only those in them (then `limit` is drawn from those)."""
        # the data directory and hub mirror are passed on only when the config has them
        where = {key: value for key in ("data_dir", "hub_mirror") if (value := getattr(self.cfg, key, None))}
        if not domains:
            return load_examples(spec, split, lang, seed=seed, limit=limit, **where)
        examples = load_examples(spec, split, lang, seed=seed, **where)
        return subset(in_domains(examples, domains, domain_of(spec.name)), limit, seed)

    def _features(
        self,
        spec: TaskSpec,
        split: str,
        lang: str,
        tokenizer,
        limit: int | None,
        max_length=None,
        *,
        for_training: bool = False,
        seed: int = DATA_SEED,
        copies: Callable[[list[dict]], list[dict]] | None = None,
        domains: tuple[str, ...] = (),
    ) -> tuple[list[dict], list[dict]]:
        """(examples, features) of one split and language (within `domains` when given); features for
        training or for evaluation. `copies` adds training copies to the loaded examples before encoding
        (a data strategy)."""
        examples = self._load_examples(spec, split, lang, limit, seed, domains)
        if copies is not None:
            examples = copies(examples)
        kind = get_kind(spec.kind)
        # never longer than the encoder's position table (the tiny test model has 128)
        length = min(max_length or spec.max_length, tokenizer.model_max_length)
        features = kind.encode(examples, tokenizer, length, for_training=for_training)
        note = kind.encoding_note(features)
        if note:
            self.console.print(f"  [dim]{spec.name} {split} {lang}: {note}[/dim]")
        return examples, features

    def _languages(self, spec: TaskSpec) -> list[str]:
        return self.cfg.target_languages(spec.name)

    def _robust_copies(self, spec: TaskSpec, phase: PhaseConfig, examples: list[dict], *, seed: int):
        """The training examples with the copies of the phase's data strategy (code-mixed, smoothing)
        added; unchanged for every other strategy (those act at the training step, `train.adversarial`)."""
        if phase.strategy not in DATA_STRATEGIES:
            return examples
        from xstilts.robustness.augment import augment_training_examples

        examples, note = augment_training_examples(
            examples,
            get_kind(spec.kind),
            phase.adversarial,
            lang=spec.train_language,
            seed=seed,
            benchmark_seed=DATA_SEED,
        )
        self.console.print(f"  {spec.name}: {note}")
        return examples

    def _train(self, model, tokenizer, spec: TaskSpec, phase: PhaseConfig, seed, label: str, where, tracking):
        """Fine-tune on the English training data (a domain shift's target: its in-domain part)."""
        max_length = phase.max_length or spec.max_length
        domains = self.cfg.train_domains(spec.name)
        _, train_features = self._features(
            spec,
            "train",
            spec.train_language,
            tokenizer,
            phase.train_examples,
            max_length,
            for_training=True,
            copies=partial(self._robust_copies, spec, phase, seed=seed),
            domains=domains,
        )
        dev_examples, dev_features = self._features(
            spec,
            "dev",
            spec.train_language,
            tokenizer,
            phase.dev_examples,
            max_length,
            seed=phase.dev_seed,
            domains=domains,
        )
        if self.cfg.freeze_embeddings:
            freeze_word_embeddings(model)
        result = train_task(
            model,
            tokenizer,
            spec,
            train_features,
            phase,
            dev_examples=dev_examples,
            dev_features=dev_features,
            seed=seed,
            mixed_precision=self.cfg.mixed_precision,
            description=label,
            checkpoint_dir=where,
            tracking=tracking,
        )
        self._print_resumed(label, result)
        self.console.print(
            f"  {label}: best English dev {spec.metric} {result.best_dev:.4f} at step {result.best_step}/"
            f"{result.steps}, {result.examples_per_second:.1f} train ex/s, {result.seconds:.0f}s"
        )
        return result

    def _damaged(self, step: str, checkpoint: Path) -> bool:
        """A stored step whose checkpoint exists but is damaged (a truncated model.safetensors) is redone."""
        problem = checkpoint_problem(checkpoint) if checkpoint.exists() else None
        if problem is not None:
            self.console.print(
                f"[yellow]{step}: checkpoint {checkpoint} {problem}; redoing the step[/yellow]"
            )
        return problem is not None

    def _print_resumed(self, label: str, result) -> None:
        if result.resumed_from is not None:
            self.console.print(
                f"  {label}: resumed from its training checkpoint at step {result.resumed_from}"
            )

    # ------------------------------------------------------------------ steps
    def intermediate_step(self, seed: int, intermediate: str) -> str:
        """Train the intermediate task (or mixture) once; return what the target phase starts from."""
        step = self.layout.intermediate(seed, intermediate)
        if not step.trains:
            return self.cfg.model
        out = self.layout.checkpoint_dir(step)
        # there and not damaged (`_damaged` reads the checkpoint once; a missing one is not damaged)
        if self.store.is_done(step.key, step.name) and out.exists() and not self._damaged(step.name, out):
            self.console.print(f"[dim]resume: {step.name} already done[/dim]")
            return str(out)
        twin = self._finished_twin(step)
        if twin is not None:
            return self._share_intermediate(step, twin)
        mixture, phase = self.cfg.mixture(intermediate), self.cfg.intermediate_phase(intermediate)
        # the mixture's head names, else the registry's (SIQA's carries over to XCOPA, as in XTREME-R)
        specs = [self._spec(task) for task in mixture.tasks]
        specs = [replace(spec, head=mixture.heads.get(spec.name, spec.head)) for spec in specs]
        model, tokenizer, report = build_model(
            self.cfg.model, shared_heads(specs), seed=seed, pooling=self.cfg.head_pooling
        )
        self.console.print(
            f"[bold]phase 2[/bold] intermediate {intermediate} (seed {seed}): {report.summary()}"
        )
        if self.cfg.gradient_checkpointing:
            enable_gradient_checkpointing(model.encoder)
        drawn = [
            self._intermediate_stream(spec, intermediate, mixture, phase, tokenizer, seed) for spec in specs
        ]
        streams = [stream for stream, _ in drawn]
        languages = {spec.name: counts for spec, (_, counts) in zip(specs, drawn, strict=True)}
        if mixture.mlm:
            streams.append(self._mlm_stream(model, tokenizer, mixture.mlm, phase, seed))
        if self.cfg.freeze_embeddings:
            freeze_word_embeddings(model)
        result = train_tasks(
            model,
            tokenizer,
            streams,
            phase,
            sampler=mixture.sampler,
            temperature=mixture.temperature,
            seed=seed,
            mixed_precision=self.cfg.mixed_precision,
            description=intermediate,
            checkpoint_dir=self.layout.training_dir(step),
            tracking=self._tracking(step),
        )
        self._print_resumed(intermediate, result)
        draws = ", ".join(f"{task} {n}" for task, n in result.task_draws.items())
        self.console.print(
            f"  {intermediate}: best English dev (mean headline metric) {result.best_dev:.4f} at step "
            f"{result.best_step}/{result.steps} (steps per task: {draws}), {result.seconds:.0f}s"
        )
        meta = {"model": self.cfg.model, "phase": "intermediate", "task": intermediate}
        save_checkpoint(model, tokenizer, out, meta | {"tasks": mixture.tasks})
        rows = self._consumption_rows(step, languages, result)
        for task, metrics in result.task_scores.items():
            metric = get_task(task).metric
            rows.append(self._row(step, task, "intermediate-dev", "en", metric, metrics[metric]))
        self.store.commit_step(step.key, step.name, rows)
        remove_training_checkpoint(self.layout.training_dir(step))
        return str(out)

    def _finished_twin(self, step: Step) -> Step | None:
        """An intermediate listed before `step`'s with the same training (mixtures that differ only in the
        strategy of the targets after them) that is done, with a whole checkpoint."""
        cfg = self.cfg
        training = (
            cfg.mixture(step.intermediate).identity(),
            cfg.intermediate_phase(step.intermediate).identity(),
        )
        for name in cfg.intermediate[: cfg.intermediate.index(step.intermediate)]:
            twin = self.layout.intermediate(step.seed, name)
            if not twin.trains:
                continue
            out = self.layout.checkpoint_dir(twin)
            same = (cfg.mixture(name).identity(), cfg.intermediate_phase(name).identity()) == training
            if same and self.store.is_done(twin.key, twin.name):
                if out.exists() and checkpoint_problem(out) is None:
                    return twin
        return None

    def _share_intermediate(self, step: Step, twin: Step) -> str:
        """`step`'s checkpoint is `twin`'s (the same training), hard-linked into its own folder so every
        command finds it where it looks; the twin's dev rows are copied."""
        self.console.print(
            f"[dim]{step.name}: the same intermediate training as {twin.intermediate} (they differ only "
            "in the targets' strategy); sharing its checkpoint[/dim]"
        )
        out = self.layout.checkpoint_dir(step)
        link_checkpoint(self.layout.checkpoint_dir(twin), out)
        rows = [
            self._row(step, row["target"], row["phase"], row["language"], row["metric"], row["value"])
            for row in self.store.rows(config_hash=twin.key, intermediate=twin.intermediate, seed=twin.seed)
        ]
        self.store.commit_step(step.key, step.name, rows)
        return str(out)

    def _intermediate_stream(
        self, spec: TaskSpec, arm: str, mixture, phase: PhaseConfig, tokenizer, seed: int
    ) -> tuple[TaskStream, Counter]:
        """One task of an intermediate training: English, translated or drawn training data (see
        `training_data`), cut to the matched budget when there is one; English dev. Also returns how many
        training examples are in each language."""
        kind = get_kind(spec.kind)
        max_length = mixture.max_length.get(spec.name) or phase.max_length or spec.max_length
        max_length = min(max_length, tokenizer.model_max_length)
        examples, languages = intermediate_examples(
            self._load_examples,
            spec,
            arm=arm,
            translate=mixture.translate,
            limit=phase.train_examples,
            budget=self.cfg.budget,
            seed=seed,
            data_seed=DATA_SEED,
            data_dir=self.cfg.data_dir,
            english_copies=partial(self._robust_copies, spec, phase, seed=seed),
        )
        train_features = kind.encode(examples, tokenizer, max_length, for_training=True)
        dev_examples, dev_features = self._features(
            spec, "dev", spec.train_language, tokenizer, phase.dev_examples, max_length, seed=phase.dev_seed
        )
        batch_size = mixture.batch_size.get(spec.name, phase.batch_size)
        if mixture.translate or self.cfg.budget:
            where = ", ".join(f"{lang} {n}" for lang, n in sorted(languages.items()))
            self.console.print(f"  {spec.name}: {len(examples)} training examples ({where})")
        return TaskStream(spec, train_features, batch_size, dev_examples, dev_features), languages

    def _consumption_rows(self, step: Step, languages: dict[str, Counter], result) -> list[ResultRow]:
        """What an intermediate training consumed (phase "budget"): its examples per task and language,
        and the examples seen (with repeats), optimizer steps and non-padding tokens of the whole run."""
        rows = [
            self._row(step, task, "budget", lang, "examples", n)
            for task, counts in languages.items()
            for lang, n in sorted(counts.items())
        ]
        consumed = {"steps": result.steps, "examples_seen": result.examples_seen, "tokens": result.tokens}
        return rows + [
            self._row(step, step.intermediate, "budget", "all", name, value)
            for name, value in consumed.items()
        ]

    def _mlm_stream(self, model, tokenizer, mlm, phase: PhaseConfig, seed: int) -> TaskStream:
        """The MLM baseline's stream: multilingual raw text, masked per batch, and a tied MLM head."""
        head, init = mlm_head_from_checkpoint(model.encoder, pretrained_mlm_head_state(self.cfg.model))
        model.heads["mlm"] = head
        self.console.print(f"  mlm: {init.summary()}")
        text = mlm.text if isinstance(mlm.text, str) else [str(path) for path in mlm.text]
        # Bible text leaves out the embedded benchmark's dev and test chapters
        lines = raw_text(text, mlm.languages, mlm.examples, seed=DATA_SEED, benchmark_seed=DATA_SEED)
        kind = MaskedLM.for_vocabulary(head.num_outputs, mlm.mask_probability)
        length = min(mlm.max_length, tokenizer.model_max_length)
        features = kind.encode([{"text": line} for line in lines], tokenizer, length, for_training=True)
        spec = TaskSpec(name="mlm", kind="mlm", source="raw-text", languages=(), metric="", head="mlm")
        collate = kind.collator(tokenizer, seed=seed)
        return TaskStream(spec, features, mlm.batch_size or phase.batch_size, kind=kind, collate=collate)

    def target_step(self, seed: int, intermediate: str, source: str, target: str) -> str:
        """Fine-tune and evaluate one target after `intermediate` (or score it on the encoder); returns the
        step's name. Done: stored under its key, with its checkpoint whole when checkpoints are kept."""
        step = self.layout.target(seed, intermediate, target)
        spec = self._spec(target)
        kept = self.cfg.save_target_checkpoints and get_kind(spec.kind).trains
        checkpoint = self.layout.checkpoint_dir(step)
        done = self.store.is_done(step.key, step.name) and not self._damaged(step.name, checkpoint)
        if done and (not kept or checkpoint.exists()):
            self.console.print(f"[dim]resume: {step.name} already done[/dim]")
            return step.name
        if get_kind(spec.kind).trains:
            rows = self._fine_tune_and_evaluate(step, source, spec)
        else:
            rows = self._score_on_encoder(step, source, spec)
        self.store.commit_step(step.key, step.name, rows)
        remove_training_checkpoint(self.layout.training_dir(step))
        return step.name

    def _fine_tune_and_evaluate(self, step: Step, source: str, spec: TaskSpec):
        kind, intermediate, seed = get_kind(spec.kind), step.intermediate, step.seed
        model, tokenizer, report = build_model(
            source, {spec.head_name: kind.head(spec)}, seed=seed, pooling=self.cfg.head_pooling
        )
        if self.cfg.gradient_checkpointing:
            enable_gradient_checkpointing(model.encoder)
        self.console.print(
            f"[bold]phase 3[/bold] target {spec.name} after {intermediate}: {report.summary()}"
        )
        phase = self.cfg.phase_for(spec.name, intermediate)
        label = f"{spec.name} <- {intermediate}"
        where = self.layout.training_dir(step)
        result = self._train(model, tokenizer, spec, phase, seed, label, where, self._tracking(step))
        if self.cfg.save_target_checkpoints:
            meta = {
                "model": self.cfg.model,
                "phase": "target",
                "task": spec.name,
                "intermediate": intermediate,
            }
            save_checkpoint(model, tokenizer, self.layout.checkpoint_dir(step), meta)
        dev = result.best_scores or {spec.metric: result.best_dev}
        rows = [
            self._row(step, spec.name, "target-dev", spec.train_language, name, value)
            for name, value in dev.items()
        ]
        max_length = phase.max_length or spec.max_length
        zero_shot = []
        for lang in self._languages(spec):
            # one decode gives both the stored scores and the written predictions
            predictions, scores = self._test(model, tokenizer, spec, lang, max_length, phase.eval_batch_size)
            self._write_predictions(seed, intermediate, spec, lang, predictions)
            zero_shot += [
                self._row(step, spec.name, "zero-shot", lang, metric, scores[metric])
                for metric in task_metrics(spec)
            ]
        rows += zero_shot
        self._print_languages(spec, intermediate, [row for row in zero_shot if row.metric == spec.metric])
        for shift in self.cfg.shifts_of(spec.name):
            rows += self._score_domain_shift(step, shift, model, tokenizer, spec, phase)
        del model
        gc.collect()
        return rows

    def _test(self, model, tokenizer, spec: TaskSpec, lang: str, max_length, batch_size, domains=()):
        """(predictions, scores) of `model` on one language's test set (within `domains` when given)."""
        examples, features = self._features(
            spec, "test", lang, tokenizer, self.cfg.test_examples, max_length, domains=domains
        )
        predictions = predict_task(model, tokenizer, spec, examples, features, batch_size)
        gold = get_kind(spec.kind).gold(examples, spec)
        return predictions, score_predictions(task_metrics(spec), predictions, gold, lang)

    def _score_domain_shift(self, step: Step, shift, model, tokenizer, spec: TaskSpec, phase) -> list:
        """The target's model on the shift's in-domain and out-of-domain test sets, per language both have;
        rows are stored under the shift's name, phase "in-domain" / "out-of-domain"."""
        rows = []
        for part, test_set in shift.test_sets().items():
            test_spec = replace(self._spec(test_set.task), head=spec.head_name)  # read by the target's head
            max_length = phase.max_length or test_spec.max_length
            for lang in shift_languages(shift, self.cfg.languages):
                batch_size, domains = phase.eval_batch_size, test_set.domains
                _, scores = self._test(model, tokenizer, test_spec, lang, max_length, batch_size, domains)
                rows += [self._row(step, shift.name, part, lang, m, v) for m, v in scores.items()]
            shown = [row for row in rows if row.phase == part and row.metric == test_spec.metric]
            cells = "  ".join(f"{row.language} {row.value:.3f}" for row in shown)
            self.console.print(f"  {shift.name} {part} ({escape(test_set.describe())}): {cells}")
        return rows

    def _sentence_encoder(self, source: str, spec: TaskSpec, intermediate: str):
        """texts -> pooled sentence vectors of the encoder at `source` (no head, no training), at the task's
        retrieval layer and pooling; the config's `retrieval.layer` / `retrieval.pooling` override them."""
        import torch

        model, tokenizer, _ = build_model(source, {})
        encoder = model.encoder.to("cuda" if torch.cuda.is_available() else "cpu")
        settings = self.cfg.retrieval
        layer = settings.layer if settings.layer is not None else spec.retrieval_layer
        pooling = settings.pooling or spec.pooling
        direction = f", {retrieval_direction(spec, settings)}" if spec.retrieval_direction else ""
        self.console.print(
            f"[bold]phase 4[/bold] {spec.kind} {spec.name} after {intermediate}: "
            f"layer {layer}, {pooling} pooling{direction}"
        )
        kind = get_kind(spec.kind)  # encodes and batches {"text"} dicts
        length = min(spec.max_length, tokenizer.model_max_length)

        recent: dict[tuple[str, ...], np.ndarray] = {}

        def vectors(texts) -> np.ndarray:
            """Embeds `texts`; a repeat of one of the last 4 calls (the Bible's English side, language
            after language, for retrieval and both mining splits) is returned without a forward pass."""
            key = tuple(texts)
            if key not in recent:
                features = kind.encode([{"text": text} for text in texts], tokenizer, length)
                if len(recent) == 4:
                    del recent[next(iter(recent))]
                recent[key] = embed(encoder, kind, tokenizer, features, layer, pooling, settings.batch_size)
            return recent[key]

        return vectors

    def _score_on_encoder(self, step: Step, source: str, spec: TaskSpec):
        """Retrieval and mining, scored on the encoder straight after phase 2 (no target training), as in
        Phang et al.; the procedure is the kind's (`evaluate.encoder_scores`). `retrieval.examples` caps the
        problem size where the source allows it (the Bible: verses, or gold pairs for mining)."""
        seed, intermediate = step.seed, step.intermediate
        vectors = self._sentence_encoder(source, spec, intermediate)
        settings = self.cfg.retrieval
        rows = []
        for lang in self._languages(spec):
            if lang == spec.train_language:
                continue
            problem = {
                split: self._load_examples(spec, split, lang, settings.examples) for split in spec.splits
            }
            scores, predictions = score_on_encoder(vectors, problem, spec, lang, settings)
            rows += [self._row(step, spec.name, "zero-shot", lang, metric, v) for metric, v in scores.items()]
            self._write_predictions(seed, intermediate, spec, lang, predictions)
        self._print_languages(spec, intermediate, [row for row in rows if row.metric == spec.metric])
        return rows

    # ------------------------------------------------------------- predictions
    def _predictions_wanted(self, spec: TaskSpec) -> bool:
        return bool(self.cfg.write_predictions and spec.xtreme_name)

    def prediction_dir(self, seed: int, intermediate: str) -> Path:
        """The XTREME submission folder of one (seed, intermediate): `<task>/test-<lang>.<ext>` inside."""
        return self.layout.prediction_dir(seed, intermediate)

    def _write_predictions(self, seed: int, intermediate: str, spec: TaskSpec, lang: str, predictions):
        """With `write_predictions`, one language's test predictions of an XTREME task, in XTREME's format."""
        if self._predictions_wanted(spec):
            folder = self.prediction_dir(seed, intermediate) / spec.xtreme_name
            xtreme.write_predictions(folder, lang, predictions, spec.xtreme_name)

    def _print_languages(self, spec: TaskSpec, intermediate: str, rows: list[ResultRow]) -> None:
        cells = "  ".join(f"{row.language} {row.value:.3f}" for row in rows)
        mean = np.mean([row.value for row in rows]) if rows else float("nan")
        self.console.print(f"  zero-shot {spec.name} <- {intermediate}: mean {mean:.4f} | {cells}")

    # -------------------------------------------------------------------- run
    @main_process_writes
    def write_config(self) -> Path:
        """The run directory's config.json: the validated config, its fingerprint and the keys of its steps
        (the report shows the rows of those keys).

        The model is resolved first: a typo'd model name fails here, before a finished run's config.json
        (and with it the report's view of its results) is overwritten."""
        resolve_model(self.cfg.model)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.layout.config_file
        identity = {"config_hash": self.cfg.fingerprint(), "step_keys": self.layout.current_keys()}
        identity[STRATEGIES_KEY] = self.layout.strategies()  # what the robust-training report compares
        if (
            path.exists()
        ):  # `xstilts attack` notes its steps here; the report keeps those of current checkpoints
            attacks = json.loads(path.read_text()).get(ATTACK_STEP_KEYS)
            if attacks:
                identity[ATTACK_STEP_KEYS] = attacks
        with atomic_file(path) as handle:
            json.dump(self.cfg.model_dump(mode="json") | identity, handle, indent=2)
        return path

    def run(self) -> Path:
        self.write_config()
        for seed in self.cfg.seeds:
            for intermediate in self.cfg.intermediate:
                source = self.intermediate_step(seed, intermediate)
                for target in self.cfg.targets:
                    self.target_step(seed, intermediate, source, target)
        return self.run_dir


def run_experiment(cfg: ExperimentConfig, console: Console | None = None) -> Path:
    return Pipeline(cfg, console).run()
