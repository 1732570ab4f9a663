"""An experiment grid on Ray: every (seed, intermediate) training and every target step as a Ray task.

The steps are the same `Pipeline` steps that `xstilts run` executes one after another; Ray only decides
where and when. A target step depends on its intermediate step (the checkpoint path is passed as an object
reference), so targets start as soon as their intermediate model exists and independent steps run side by
side, one per GPU when there are GPUs. Each step commits to the run's SQLite results store atomically, so
a grid interrupted anywhere resumes like a plain run.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from xstilts.config import ExperimentConfig
from xstilts.io import atomic_file
from xstilts.pipeline.runner import Pipeline


def _steps_remote(gpus_per_step: float, cpus_per_step: float):
    import ray

    options = {"num_gpus": gpus_per_step, "num_cpus": cpus_per_step, "max_retries": 0}

    @ray.remote(**options)
    def intermediate(config: dict, seed: int, name: str) -> str:
        pipeline = Pipeline(ExperimentConfig.model_validate(config), Console(stderr=True))
        return pipeline.intermediate_step(seed, name)

    @ray.remote(**options)
    def target(config: dict, seed: int, name: str, source: str, task: str) -> str:
        pipeline = Pipeline(ExperimentConfig.model_validate(config), Console(stderr=True))
        pipeline.target_step(seed, name, source, task)
        return f"seed{seed}/target/{name}/{task}"

    return intermediate, target


def run_grid(
    cfg: ExperimentConfig,
    console: Console | None = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    gpus_per_step: float | None = None,
    cpus_per_step: float = 1.0,
) -> Path:
    """Run every step of `cfg` as Ray tasks; returns the run directory.

    `address` joins an existing Ray cluster ("auto", "ray://..."); by default a local instance is started
    (with `num_cpus`) and shut down afterwards. `gpus_per_step` defaults to 1 when the cluster has GPUs.
    """
    import ray

    console = console or Console()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        if gpus_per_step is None:
            gpus_per_step = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        pipeline = Pipeline(cfg, console)  # writes config.json and creates the store once, up front
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(cfg.run_dir / "config.json") as handle:
            json.dump(cfg.model_dump(mode="json") | {"config_hash": pipeline.config_hash}, handle, indent=2)
        intermediate, target = _steps_remote(gpus_per_step, cpus_per_step)
        config = cfg.model_dump(mode="json")
        pending = []
        for seed in cfg.seeds:
            for name in cfg.intermediate:
                source = intermediate.remote(config, seed, name)
                pending += [target.remote(config, seed, name, source, task) for task in cfg.targets]
        console.print(
            f"[bold]xstilts grid[/bold]: {len(pending)} target steps on Ray "
            f"({gpus_per_step:g} GPU, {cpus_per_step:g} CPU per step)"
        )
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            console.print(f"  finished {ray.get(done[0])} ({len(pending)} to go)")
    finally:
        if started_here:
            ray.shutdown()
    return cfg.run_dir
