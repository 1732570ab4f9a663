"""The experiment, phase by phase: pretrained -> intermediate -> target -> zero-shot evaluation.

Each step is skipped when the results store says it finished, so an interrupted run resumes where it
stopped. One intermediate model is trained per (seed, intermediate task) and reused for every target.
"""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console

from xstilts.config import NONE_TASK, ExperimentConfig, PhaseConfig
from xstilts.evaluate.inference import embed
from xstilts.evaluate.metrics import get_metric
from xstilts.evaluate.task_eval import evaluate_task, task_metrics
from xstilts.io import atomic_file
from xstilts.models.checkpoint import build_model, is_complete, save_checkpoint
from xstilts.pipeline.store import ResultRow, ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples, task_labels
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import freeze_word_embeddings, train_task

DATA_SEED = 0  # the benchmark itself is fixed; run seeds only change training


class Pipeline:
    def __init__(self, cfg: ExperimentConfig, console: Console | None = None):
        self.cfg = cfg
        self.console = console or Console()
        self.run_dir = cfg.run_dir
        self.config_hash = cfg.fingerprint()
        self.store = ResultsStore.in_run_dir(self.run_dir)

    # ---------------------------------------------------------------- helpers
    def _row(self, seed: int, intermediate: str, target: str, phase: str, language: str, metric: str, value):
        return ResultRow(
            run_id=self.cfg.name,
            config_hash=self.config_hash,
            model=self.cfg.model,
            intermediate=intermediate,
            target=target,
            phase=phase,
            language=language,
            metric=metric,
            value=float(value),
            seed=seed,
        )

    def _checkpoint_dir(self, seed: int, *parts: str) -> Path:
        return self.run_dir / "checkpoints" / f"seed{seed}" / "__".join(parts)

    def _spec(self, name: str) -> TaskSpec:
        """The task, its tag set filled in where that comes from the training file (CCG's supertags)."""
        spec = get_task(name)
        if spec.kind == "tagging" and not spec.labels:
            spec = replace(spec, labels=task_labels(spec, getattr(self.cfg, "data_dir", None)))
        return spec

    def _load_examples(self, spec: TaskSpec, split: str, lang: str, limit: int | None) -> list[dict]:
        # the data directory and hub mirror are passed on only when the config has them
        where = {key: value for key in ("data_dir", "hub_mirror") if (value := getattr(self.cfg, key, None))}
        return load_examples(spec, split, lang, seed=DATA_SEED, limit=limit, **where)

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
    ) -> tuple[list[dict], list[dict]]:
        """(examples, features) of one split and language; features for training or for evaluation."""
        examples = self._load_examples(spec, split, lang, limit)
        kind = get_kind(spec.kind)
        # never longer than the encoder's position table (the tiny test model has 128)
        length = min(max_length or spec.max_length, tokenizer.model_max_length)
        features = kind.encode(examples, tokenizer, length, for_training=for_training)
        note = kind.encoding_note(features)
        if note:
            self.console.print(f"  [dim]{spec.name} {split} {lang}: {note}[/dim]")
        return examples, features

    def _languages(self, spec: TaskSpec) -> list[str]:
        return list(self.cfg.languages or spec.languages)

    def _train(self, model, tokenizer, spec: TaskSpec, phase: PhaseConfig, seed: int, label: str):
        max_length = phase.max_length or spec.max_length
        _, train_features = self._features(
            spec, "train", spec.train_language, tokenizer, phase.train_examples, max_length, for_training=True
        )
        dev_examples, dev_features = self._features(
            spec, "dev", spec.train_language, tokenizer, phase.dev_examples, max_length
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
        )
        self.console.print(
            f"  {label}: best English dev {spec.metric} {result.best_dev:.4f} at step {result.best_step}/"
            f"{result.steps}, {result.examples_per_second:.1f} train ex/s, {result.seconds:.0f}s"
        )
        return result

    # ------------------------------------------------------------------ steps
    def intermediate_step(self, seed: int, intermediate: str) -> str:
        """Train the intermediate task once; return what the target phase starts from."""
        if intermediate == NONE_TASK:
            return self.cfg.model
        out = self._checkpoint_dir(seed, intermediate)
        step = f"seed{seed}/intermediate/{intermediate}"
        if self.store.is_done(self.config_hash, step) and is_complete(out):
            self.console.print(f"[dim]resume: {step} already done[/dim]")
            return str(out)
        spec = self._spec(intermediate)
        model, tokenizer, report = build_model(
            self.cfg.model,
            {spec.head_name: get_kind(spec.kind).head(spec)},
            seed=seed,
            pooling=self.cfg.head_pooling,
        )
        self.console.print(
            f"[bold]phase 2[/bold] intermediate {intermediate} (seed {seed}): {report.summary()}"
        )
        result = self._train(model, tokenizer, spec, self.cfg.intermediate_training, seed, f"{intermediate}")
        save_checkpoint(
            model, tokenizer, out, {"model": self.cfg.model, "phase": "intermediate", "task": spec.name}
        )
        rows = [
            self._row(
                seed, intermediate, intermediate, "intermediate-dev", "en", spec.metric, result.best_dev
            )
        ]
        self.store.commit_step(self.config_hash, step, rows)
        return str(out)

    def target_step(self, seed: int, intermediate: str, source: str, target: str) -> None:
        step = f"seed{seed}/target/{intermediate}/{target}"
        if self.store.is_done(self.config_hash, step):
            self.console.print(f"[dim]resume: {step} already done[/dim]")
            return
        spec = self._spec(target)
        rows = (
            self._retrieval(seed, intermediate, source, spec)
            if not spec.trains
            else self._fine_tune_and_evaluate(seed, intermediate, source, spec)
        )
        self.store.commit_step(self.config_hash, step, rows)

    def _fine_tune_and_evaluate(self, seed: int, intermediate: str, source: str, spec: TaskSpec):
        kind = get_kind(spec.kind)
        model, tokenizer, report = build_model(
            source, {spec.head_name: kind.head(spec)}, seed=seed, pooling=self.cfg.head_pooling
        )
        self.console.print(
            f"[bold]phase 3[/bold] target {spec.name} after {intermediate}: {report.summary()}"
        )
        phase = self.cfg.phase_for(spec.name)
        result = self._train(model, tokenizer, spec, phase, seed, f"{spec.name} <- {intermediate}")
        if self.cfg.save_target_checkpoints:
            meta = {
                "model": self.cfg.model,
                "phase": "target",
                "task": spec.name,
                "intermediate": intermediate,
            }
            save_checkpoint(model, tokenizer, self._checkpoint_dir(seed, intermediate, spec.name), meta)
        dev = result.best_scores or {spec.metric: result.best_dev}
        rows = [
            self._row(seed, intermediate, spec.name, "target-dev", spec.train_language, name, value)
            for name, value in dev.items()
        ]
        max_length = phase.max_length or spec.max_length
        zero_shot = []
        for lang in self._languages(spec):
            examples, features = self._features(
                spec, "test", lang, tokenizer, self.cfg.test_examples, max_length
            )
            scores = evaluate_task(
                model, tokenizer, spec, examples, features, phase.eval_batch_size, language=lang
            )
            zero_shot += [
                self._row(seed, intermediate, spec.name, "zero-shot", lang, name, scores[name])
                for name in task_metrics(spec)
            ]
        rows += zero_shot
        self._print_languages(spec, intermediate, [row for row in zero_shot if row.metric == spec.metric])
        del model
        gc.collect()
        return rows

    def _retrieval(self, seed: int, intermediate: str, source: str, spec: TaskSpec):
        """Retrieval is scored on the encoder straight after phase 2 (no target training)."""
        model, tokenizer, _ = build_model(source, {})
        layer = self.cfg.retrieval.layer if self.cfg.retrieval.layer is not None else spec.retrieval_layer
        pooling = self.cfg.retrieval.pooling or spec.pooling
        self.console.print(
            f"[bold]phase 4[/bold] retrieval {spec.name} after {intermediate}: "
            f"layer {layer}, {pooling} pooling"
        )
        kind, settings = get_kind(spec.kind), self.cfg.retrieval

        def vectors(lang: str) -> np.ndarray:
            _, features = self._features(spec, "test", lang, tokenizer, settings.examples)
            return embed(model.encoder, kind, tokenizer, features, layer, pooling, settings.batch_size)

        english = vectors(spec.train_language)
        score = get_metric(spec.metric)
        rows = [
            self._row(
                seed, intermediate, spec.name, "zero-shot", lang, spec.metric, score(vectors(lang), english)
            )
            for lang in self._languages(spec)
            if lang != spec.train_language
        ]
        self._print_languages(spec, intermediate, rows)
        return rows

    def _print_languages(self, spec: TaskSpec, intermediate: str, rows: list[ResultRow]) -> None:
        cells = "  ".join(f"{row.language} {row.value:.3f}" for row in rows)
        mean = np.mean([row.value for row in rows]) if rows else float("nan")
        self.console.print(f"  zero-shot {spec.name} <- {intermediate}: mean {mean:.4f} | {cells}")

    # -------------------------------------------------------------------- run
    def run(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.run_dir / "config.json") as handle:
            json.dump(self.cfg.model_dump(mode="json") | {"config_hash": self.config_hash}, handle, indent=2)
        for seed in self.cfg.seeds:
            for intermediate in self.cfg.intermediate:
                source = self.intermediate_step(seed, intermediate)
                for target in self.cfg.targets:
                    self.target_step(seed, intermediate, source, target)
        return self.run_dir


def run_experiment(cfg: ExperimentConfig, console: Console | None = None) -> Path:
    return Pipeline(cfg, console).run()
