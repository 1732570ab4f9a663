"""Where everything of one run lives, and what identifies each of its steps.

A step is keyed by what determines its result, not by the whole config: an intermediate training by the
model, the mixture and its phase settings, the seed and where the data comes from; a target step by its
intermediate's key, its own phase settings, the languages and test cap (and the retrieval settings, for
targets scored on the encoder). Adding a target or a seed therefore leaves every finished step finished,
and changing the intermediate learning rate redoes that intermediate and its targets only. Checkpoint
directories carry the key, so a rerun with other settings never overwrites a checkpoint that earlier rows
refer to.

The results store's `config_hash` column holds the key of the step that wrote the row (alignment rows: the
key of the checkpoint they measure; summaries over several checkpoints: the run's fingerprint).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from xstilts.config import NONE_TASK, ExperimentConfig
from xstilts.pipeline.store import STORE_FILE, ResultsStore
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task

CONFIG_FILE = "config.json"
ATTACK_STEP_KEYS = "attack_step_keys"  # config.json: attack step key -> the checkpoint step key it attacked
STRATEGIES_KEY = "strategies"  # config.json: intermediate -> the training strategies of its two phases


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Step:
    """One pipeline step: an intermediate training (target None) or a target after an intermediate."""

    seed: int
    intermediate: str
    target: str | None
    key: str

    @property
    def name(self) -> str:
        """The step's readable name in the store and the log."""
        if self.target is None:
            return f"seed{self.seed}/intermediate/{self.intermediate}"
        return f"seed{self.seed}/target/{self.intermediate}/{self.target}"

    @property
    def label(self) -> str:
        """The checkpoint's name: "bible-next", "bible-next__bible-genre" (align's `target` column)."""
        return self.intermediate if self.target is None else f"{self.intermediate}__{self.target}"

    @property
    def trains(self) -> bool:
        """False for the pretrained model standing in for the `none` intermediate."""
        return not (self.target is None and self.intermediate == NONE_TASK)


class RunLayout:
    """The run directory of `cfg`: step keys, checkpoint and training folders, the store, config.json."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path | None = None):
        """`run_dir` where the run directory is not where `cfg` puts it (it was moved or copied)."""
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else cfg.run_dir

    # ------------------------------------------------------------------------------------------- keys
    def _setup(self) -> dict:
        """What every step shares that changes results: the model, its heads, precision and the data."""
        cfg = self.cfg
        return {
            "model": cfg.model,
            "head_pooling": cfg.head_pooling,
            "freeze_embeddings": cfg.freeze_embeddings,
            "mixed_precision": cfg.mixed_precision,
            "data_dir": cfg.data_dir,
            "hub_mirror": cfg.hub_mirror,
        }

    @property
    def pretrained_key(self) -> str:
        """The key of the pretrained model itself (what `none` targets start from)."""
        return _digest({"model": self.cfg.model})

    def intermediate(self, seed: int, intermediate: str) -> Step:
        if intermediate == NONE_TASK:
            return Step(seed, intermediate, None, self.pretrained_key)
        payload = {
            "setup": self._setup(),
            "seed": seed,
            "intermediate": intermediate,
            "mixture": self.cfg.mixture(intermediate).identity(),
            "phase": self.cfg.intermediate_phase(intermediate).identity(),
        }
        return Step(seed, intermediate, None, _digest(payload))

    def target(self, seed: int, intermediate: str, target: str) -> Step:
        cfg = self.cfg
        payload = {
            "after": self.intermediate(seed, intermediate).key,
            "setup": self._setup(),
            "seed": seed,
            "target": target,
            "phase": cfg.phase_for(target, intermediate).identity(),
            "languages": cfg.languages
            if cfg.languages or cfg.suite == "xtreme"
            else cfg.target_languages(target),
            "test_examples": cfg.test_examples,
        }
        if not get_kind(get_task(target).kind).trains:  # scored on the encoder with these settings
            payload["retrieval"] = cfg.retrieval.model_dump(mode="json")
        shifts = [asdict(shift) for shift in cfg.shifts_of(target)]
        if shifts:  # trained on the in-domain data, scored on each shift's test sets
            payload["domain_shift"] = shifts[0] if len(shifts) == 1 else shifts
        if cfg.write_predictions:  # turning predictions on redoes the targets that must write them
            payload["write_predictions"] = True
        return Step(seed, intermediate, target, _digest(payload))

    def steps(self) -> list[Step]:
        """Every step of the config, in the order `xstilts run` does them."""
        out = []
        for seed in self.cfg.seeds:
            for intermediate in self.cfg.intermediate:
                out.append(self.intermediate(seed, intermediate))
                out += [self.target(seed, intermediate, target) for target in self.cfg.targets]
        return out

    def strategies(self) -> dict[str, dict]:
        """intermediate -> {"intermediate": its strategy, "targets": {target: the target's strategy}}."""
        cfg = self.cfg
        return {
            name: {
                "intermediate": "none" if name == NONE_TASK else cfg.intermediate_phase(name).strategy,
                "targets": {target: cfg.phase_for(target, name).strategy for target in cfg.targets},
            }
            for name in cfg.intermediate
        }

    def current_keys(self) -> list[str]:
        """The keys whose rows the report shows: every step's, the pretrained model's, the run's own."""
        keys = [self.pretrained_key, *(step.key for step in self.steps()), self.cfg.fingerprint()]
        return list(dict.fromkeys(keys))

    def current_rows(self, **where) -> list[dict]:
        """The store's rows of the current config's steps (rows of earlier settings stay in the store)."""
        keys = set(self.current_keys())
        return [row for row in self.store.rows(**where) if row["config_hash"] in keys]

    # ------------------------------------------------------------------------------------------ paths
    @property
    def config_file(self) -> Path:
        return self.run_dir / CONFIG_FILE

    @functools.cached_property
    def store(self) -> ResultsStore:
        """Opened (and checked) once per layout."""
        return ResultsStore(self.run_dir / STORE_FILE)

    def checkpoint_dir(self, step: Step) -> Path:
        """`checkpoints/seed<N>/<label>-<key>`: a changed step gets a new folder beside the old one."""
        return self.run_dir / "checkpoints" / f"seed{step.seed}" / f"{step.label}-{step.key}"

    def checkpoint_of(self, seed: int, intermediate: str, target: str | None = None) -> Path:
        """The checkpoint folder of the current config's intermediate (or target after it) for `seed`."""
        if target is None:
            return self.checkpoint_dir(self.intermediate(seed, intermediate))
        return self.checkpoint_dir(self.target(seed, intermediate, target))

    def training_dir(self, step: Step) -> Path:
        """Where an unfinished training keeps its exact checkpoint (removed once its step is stored)."""
        return self.run_dir / "training" / f"seed{step.seed}" / f"{step.label}-{step.key}"

    def prediction_dir(self, seed: int, intermediate: str) -> Path:
        """The XTREME submission folder of one (seed, intermediate): `<task>/test-<lang>.<ext>` inside."""
        return self.run_dir / "predictions" / f"seed{seed}" / intermediate
