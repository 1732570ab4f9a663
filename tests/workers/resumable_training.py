"""A small multi-task training with gradient accumulation and exact checkpoints, run as its own process
by tests/test_resume.py (which kills it with SIGKILL and runs it again).

Usage: python resumable_training.py CHECKPOINT_DIR RESULT_JSON [SECONDS_PER_STEP]
"""

import hashlib
import json
import sys
import time
from pathlib import Path

from xstilts.config import PhaseConfig
from xstilts.models.checkpoint import build_model
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import TaskStream, TrainingRecipe, freeze_word_embeddings
from xstilts.train.strategy import PlainTraining


class Slowed(PlainTraining):
    """Plain training, slowed, writing after each micro-batch how many optimizer steps the run has completed
    (`<result>.heartbeat`), and at its first micro-batch the step it resumed from (a line of
    `<result>.starts`), so that the killing test can land anywhere, between checkpoints too."""

    def __init__(self, seconds: float, result_path: Path):
        self.seconds, self.result_path = seconds, result_path
        self.recipe, self.started = None, False

    def loss_and_backward(self, accelerator, model, stream, batch, scale):
        time.sleep(self.seconds)
        loss = super().loss_and_backward(accelerator, model, stream, batch, scale)
        if not self.started:
            self.started = True
            with self.result_path.with_suffix(".starts").open("a") as starts:
                starts.write(f"{self.recipe.resumed_from}\n")
        self.result_path.with_suffix(".heartbeat").write_text(str(self.recipe.progress.step))
        return loss


def stream(name: str, words: tuple[str, str], n: int, batch_size: int, tokenizer) -> TaskStream:
    spec = TaskSpec(
        name=name, kind="classification", source="bible", languages=("en",), metric="accuracy", labels=words
    )
    examples = [
        {"id": str(i), "text": f"the {words[i % 2]} of {name} number {i}", "label": i % 2} for i in range(n)
    ]
    kind = get_kind("classification")
    train = kind.encode(examples, tokenizer, 32, for_training=True)
    dev = kind.encode(examples[:8], tokenizer, 32)
    return TaskStream(spec, train, batch_size, dev_examples=examples[:8], dev_features=dev)


def main() -> None:
    checkpoint_dir, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"rivers": 2, "hills": 2}, seed=5)
    streams = [
        stream("rivers", ("river", "lake"), 12, 3, tokenizer),
        stream("hills", ("hill", "valley"), 40, 4, tokenizer),
    ]
    phase = PhaseConfig(
        max_steps=15,
        batch_size=4,
        grad_accumulation=2,
        learning_rate=2e-3,
        warmup_ratio=0.2,
        eval_every=5,
        checkpoint_every=3,
    )
    freeze_word_embeddings(model)  # small checkpoints: frozen weights are not saved
    slowed = Slowed(seconds, result_path)
    recipe = TrainingRecipe(
        model, tokenizer, streams, phase, seed=5, checkpoint_dir=checkpoint_dir, strategy=slowed
    )
    slowed.recipe = recipe
    result = recipe.run()
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    summary = {
        "weights": digest.hexdigest(),
        "best_dev": result.best_dev,
        "best_step": result.best_step,
        "steps": result.steps,
        "history": result.dev_history,
        "draws": result.task_draws,
        "scores": result.task_scores,
        "resumed_from": recipe.resumed_from,
    }
    result_path.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
