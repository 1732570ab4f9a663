"""Optional tracking: a real training logs to TensorBoard (read back from the event files), off by default
writes nothing, and an unknown or missing tracker fails before any training."""

from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config import PhaseConfig, load_config
from xstilts.errors import XstiltsError
from xstilts.models.checkpoint import build_model
from xstilts.pipeline.runner import Pipeline
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train import tracking as tracking_module
from xstilts.train.loop import TaskStream, TrainingRecipe, train_task
from xstilts.train.tracking import Tracking, require_tracker

pytest.importorskip("tensorboard", reason='the tracking extra: pip install -e ".[tracking]"')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

STEPS, EVAL_EVERY, LR, HEAD_LR = 6, 3, 2e-3, 1e-2
TOY = TaskSpec(  # tests/test_training.py's toy task: which of two words a sentence contains
    name="toy", kind="classification", source="bible", languages=("en",), metric="accuracy", labels=("r", "m")
)


def toy_examples():
    words = [("river", 0), ("mountain", 1)]
    return [
        {"id": str(i), "text": f"the {words[i % 2][0]} number {i}", "label": words[i % 2][1]}
        for i in range(16)
    ]


def _toy(seed: int = 0):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"toy": 2}, seed=seed)
    examples = toy_examples()
    features = get_kind("classification").encode(examples, tokenizer, 32, for_training=True)
    return model, tokenizer, examples, features


def _phase(**kw) -> PhaseConfig:
    settings = dict(max_steps=STEPS, learning_rate=LR, batch_size=8, warmup_ratio=0.0, eval_every=EVAL_EVERY)
    return PhaseConfig(**(settings | kw))


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_loss_learning_rates_throughput_and_every_dev_metric(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking_module, "FLUSH_EVERY", 2)  # reads at even steps as well as evaluations
    model, tokenizer, examples, features = _toy()
    stream = TaskStream(TOY, features, 8, examples, features)
    where = Tracking("tensorboard", tmp_path / "logs", "seed0/target/none/toy")
    phase = _phase(head_learning_rate=HEAD_LR)
    recipe = TrainingRecipe(model, tokenizer, [stream], phase, seed=0, tracking=where)
    losses, train_step = {}, recipe.train_step

    def recorded_step():
        loss = train_step()
        losses[recipe.progress.step] = loss.item()
        return loss

    recipe.train_step = recorded_step
    result = recipe.run()

    assert where.logging_dir == tmp_path / "logs" / "seed0" / "target" / "none" / "toy"
    scalars = _scalars(where.logging_dir)
    steps = list(range(1, STEPS + 1))
    # every step's loss, read back as written (float32 event values)
    assert [s for s, _ in scalars["train/loss"]] == steps
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([losses[s] for s in steps], rel=1e-6)
    # the linear schedule (no warm-up) as the scheduler set it after each step: encoder and heads' rates
    for tag, base in (("train/learning_rate", LR), ("train/head_learning_rate", HEAD_LR)):
        expected = [base * (STEPS - s) / STEPS for s in steps]
        assert [s for s, _ in scalars[tag]] == steps
        assert [v for _, v in scalars[tag]] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    # throughput at each window's end: even steps and evaluations (step 1 opens the window; 6 is both)
    assert [s for s, _ in scalars["train/examples_per_second"]] == [2, 3, 4, 6]
    assert all(v > 0 for _, v in scalars["train/examples_per_second"])
    # every dev metric of the task, and the headline, at the evaluation steps, equal to what selection saw
    assert [s for s, _ in scalars["dev/headline"]] == [EVAL_EVERY, STEPS]
    assert [v for _, v in scalars["dev/headline"]] == pytest.approx([d for _, d in result.dev_history])
    assert [s for s, _ in scalars["dev/toy/accuracy"]] == [EVAL_EVERY, STEPS]
    # the phase's hyper-parameters as the run's configuration (accelerate also keeps a YAML copy)
    assert list(where.logging_dir.glob("*/hparams.yml"))
    assert not recipe.accelerator.trackers  # closed by finish


def test_tracking_is_off_by_default_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, tokenizer, examples, features = _toy()
    stream = TaskStream(TOY, features, 8, examples, features)
    recipe = TrainingRecipe(model, tokenizer, [stream], _phase(max_steps=2, eval_every=1), seed=0)
    recipe.run()
    assert recipe.accelerator.log_with == [] and recipe.accelerator.trackers == []
    assert list(tmp_path.iterdir()) == []
    cfg = load_config(_config(tmp_path, ""))
    pipeline = Pipeline(cfg, Console(quiet=True))
    step = pipeline.layout.intermediate(0, "bible-next")
    assert cfg.tracking == "none" and pipeline._tracking(step) is None


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"""\
name: tracked
model: tiny-random-xlmr
output_dir: {tmp_path / "runs"}
targets: [bible-genre]
languages: [en]
test_examples: 8
target_training: {{max_steps: 2, batch_size: 8, train_examples: 16, dev_examples: 8}}
{extra}"""
    )
    return path


def test_an_unknown_tracker_is_a_config_error_listing_the_valid_ones(tmp_path):
    with pytest.raises(XstiltsError) as err:
        load_config(_config(tmp_path, "tracking: wandb\n"))
    message = str(err.value)
    assert "exp.yaml:8: field 'tracking'" in message
    assert all(name in message for name in ("'none'", "'tensorboard'", "'mlflow'"))
    with pytest.raises(XstiltsError, match="valid trackers: mlflow, none, tensorboard"):
        require_tracker("wandb")


def test_tracking_does_not_change_the_config_hash(tmp_path):
    plain = load_config(_config(tmp_path, ""))
    assert load_config(_config(tmp_path, "tracking: tensorboard\n")).fingerprint() == plain.fingerprint()


def test_mlflow_not_installed_fails_fast_with_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(tracking_module.AVAILABLE, "mlflow", lambda: False)
    cfg = load_config(_config(tmp_path, "tracking: mlflow\n"))
    with pytest.raises(XstiltsError, match="pip install mlflow"):
        Pipeline(cfg, Console(quiet=True))
    assert not (tmp_path / "runs").exists()  # nothing written before the error
    model, tokenizer, examples, features = _toy()
    where = Tracking("mlflow", tmp_path / "logs", "seed0/target/none/toy")
    with pytest.raises(XstiltsError, match="pip install mlflow"):
        train_task(model, tokenizer, TOY, features, _phase(), seed=0, tracking=where)


def test_a_pipeline_training_logs_under_the_run_dir(tmp_path, isolated_datasets_cache):
    cfg = load_config(_config(tmp_path, "tracking: tensorboard\n"))
    Pipeline(cfg, Console(quiet=True)).run()
    folder = cfg.run_dir / "logs" / "seed0" / "target" / "none" / "bible-genre"
    scalars = _scalars(folder)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    assert [s for s, _ in scalars["dev/bible-genre/accuracy"]] == [2]


class _Recorder:
    """An accelerator as the step tracker sees it: it records what would go to the trackers."""

    is_main_process = True

    def __init__(self):
        self.logged, self.trackers = [], []

    def init_trackers(self, name, config=None, init_kwargs=None):
        self.name, self.config = name, config

    def log(self, values, step=None):
        self.logged.append((step, values))


def test_step_losses_stay_on_the_device_until_a_multiple_of_flush_every(monkeypatch):
    import torch

    reads = []
    for method in ("item", "tolist"):
        original = getattr(torch.Tensor, method)

        def counted(self, _original=original, _name=method):
            reads.append(_name)
            return _original(self)

        monkeypatch.setattr(torch.Tensor, method, counted)
    monkeypatch.setattr(tracking_module, "FLUSH_EVERY", 4)
    accelerator = _Recorder()
    config = {"learning_rate": 0.1, "max_steps": None}
    where = Tracking("tensorboard", Path("x"), "run")
    tracker = tracking_module.StepTracker(accelerator, where, config=config)
    assert accelerator.name == "run" and accelerator.config == {"learning_rate": 0.1}  # None left out
    for step in range(1, 4):
        tracker.after_step(step, torch.tensor(float(step)), [0.1], seen=8 * step)
    assert reads == [] and accelerator.logged == []  # nothing read or written between multiples
    tracker.after_step(4, torch.tensor(4.0), [0.1], seen=32)
    assert reads == ["tolist"]  # one read for the four steps
    losses = [(step, values["train/loss"]) for step, values in accelerator.logged]
    assert losses == [(s, s) for s in range(1, 5)]
    tracker.after_step(5, torch.tensor(5.0), [0.1], seen=40)
    tracker.close(seen=40)
    assert reads == ["tolist", "tolist"] and accelerator.logged[-1][0] == 5
