"""An experiment grid on Ray: every (seed, intermediate) training and every target step as a Ray task.

The steps are the same `Pipeline` steps that `xstilts run` executes one after another; Ray only decides
where and when. A target step depends on its intermediate step (the checkpoint path is passed as an object
reference), so targets start as soon as their intermediate model exists and independent steps run side by
side, one per GPU when there are GPUs. Each step commits to the run's SQLite results store atomically, so
a grid interrupted anywhere resumes like a plain run.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from xstilts.config import ExperimentConfig
from xstilts.errors import XstiltsError
from xstilts.pipeline.runner import Pipeline

# what the steps read from the environment; Ray workers get the driver's values (a worker on another
# node, or of a cluster started elsewhere, would not inherit them)
ENVIRONMENT = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_DATASETS_CACHE",
    "HF_ENDPOINT",
    "XSTILTS_CACHE",
    "XSTILTS_HUB_MIRROR",
    "TOKENIZERS_PARALLELISM",
)


def _environment() -> dict[str, str]:
    return {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}


def _pipeline(config: dict, cwd: str) -> Pipeline:
    # relative paths of the config (output_dir, data_dir) mean what they mean for the driver
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return Pipeline(ExperimentConfig.model_validate(config), Console(stderr=True, soft_wrap=True))


def _steps_remote(gpus_per_step: float, cpus_per_step: float):
    import ray

    options = {
        "num_gpus": gpus_per_step,
        "num_cpus": cpus_per_step,
        "max_retries": 0,
        "runtime_env": {"env_vars": _environment()},
    }

    @ray.remote(**options)
    def intermediate(config: dict, cwd: str, seed: int, name: str) -> str:
        return _pipeline(config, cwd).intermediate_step(seed, name)

    @ray.remote(**options)
    def target(config: dict, cwd: str, seed: int, name: str, source: str, task: str) -> str:
        return _pipeline(config, cwd).target_step(seed, name, source, task)

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
    try:
        import ray
    except ImportError:
        raise XstiltsError("xstilts grid needs Ray: pip install 'ray>=2.9' (or xstilts[grid])") from None

    console = console or Console()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        if gpus_per_step is None:
            gpus_per_step = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        Pipeline(cfg, console).write_config()  # config.json and the results store, once, up front
        intermediate, target = _steps_remote(gpus_per_step, cpus_per_step)
        config, cwd = cfg.model_dump(mode="json"), os.getcwd()
        pending = []
        for seed in cfg.seeds:
            for name in cfg.intermediate:
                source = intermediate.remote(config, cwd, seed, name)
                pending += [target.remote(config, cwd, seed, name, source, task) for task in cfg.targets]
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
