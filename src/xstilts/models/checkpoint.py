"""Phase checkpoints: encoder + heads in safetensors, written atomically, loaded strictly.

`xstilts.json` records each head as {"level": "sequence" | "token", "outputs": n}; metadata written
before token-level heads existed holds a bare output count, read as a sequence-level head.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_model

from xstilts.distributed import main_process_writes
from xstilts.errors import XstiltsError
from xstilts.io import atomic_dir, safetensors_problem
from xstilts.models.heads import HeadSpec, LoadReport, MultiHeadModel, StrictLoadError, load_phase_state
from xstilts.models.loading import base_model_kwargs, load_encoder, load_tokenizer

META_FILE = "xstilts.json"
WEIGHTS_FILE = "model.safetensors"
_REDO = "rerun `xstilts run CONFIG` to redo its step (a step whose checkpoint is damaged is redone)"


def is_complete(path: Path) -> bool:
    """A checkpoint exists once its directory was renamed into place, whole (see `checkpoint_problem`)."""
    return checkpoint_problem(path) is None


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with the checkpoint at `path` (None: nothing). Reads only the weights' header: a
    truncated `model.safetensors` (a full disk, a copy cut short) is told by its size."""
    path = Path(path)
    if not path.is_dir():
        return "does not exist"
    for name in (META_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            return f"has no {name}"
    try:
        json.loads((path / META_FILE).read_text())
    except (OSError, ValueError) as err:
        return f"has an unreadable {META_FILE} ({err})"
    return safetensors_problem(path / WEIGHTS_FILE)


@main_process_writes  # under `accelerate launch` the processes hold the same weights: one writes
def save_checkpoint(model: MultiHeadModel, tokenizer, path: Path, meta: dict) -> None:
    with atomic_dir(Path(path)) as tmp:
        save_model(model, str(tmp / WEIGHTS_FILE))
        model.encoder.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        heads = {name: spec.to_meta() for name, spec in model.head_spec().items()}
        meta = {**meta, "heads": heads, "head_pooling": model.pooling}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))


def link_checkpoint(source: Path, path: Path) -> None:
    """`path` holds the very files of checkpoint `source` (hard links where the file system allows, else
    copies), written atomically: two names for one training, no second copy on disk."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    with atomic_dir(Path(path)) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True, copy_function=link)


def read_meta(path: Path) -> dict:
    return json.loads((Path(path) / META_FILE).read_text())


def checkpoint_heads(meta: dict) -> dict[str, HeadSpec]:
    """The heads a checkpoint holds, from either metadata format."""
    return {name: HeadSpec.parse(value) for name, value in meta.get("heads", {}).items()}


def _check_carried_heads(meta: dict, heads: dict[str, HeadSpec], pooling: str) -> None:
    """A head kept across phases must keep its level, its outputs and (if pooled) its pooling."""
    saved = checkpoint_heads(meta)
    changed = [
        f"head {name!r} is {saved[name]} in the checkpoint but {spec} in this phase"
        for name, spec in heads.items()
        if name in saved and saved[name] != spec
    ]
    if changed:
        raise StrictLoadError("; ".join(changed))
    pooled = sorted(name for name, spec in heads.items() if name in saved and spec.level == "sequence")
    if pooled and meta.get("head_pooling") != pooling:
        raise StrictLoadError(
            f"heads {pooled} were trained with {meta.get('head_pooling')} pooling, not {pooling}"
        )


def _with_heads(encoder, heads: dict[str, HeadSpec], seed: int, pooling: str) -> MultiHeadModel:
    """New heads are initialised from `seed`, so a run is reproducible from its config alone."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MultiHeadModel(encoder, heads, pooling=pooling)


def build_model(
    source: str | Path, heads: Mapping[str, HeadSpec | int], seed: int = 0, pooling: str = "first"
) -> tuple[MultiHeadModel, object, LoadReport]:
    """The model for a phase: `source` is a model name (pretrained) or a previous phase's checkpoint.

    Encoder weights always carry over; heads of the checkpoint that `heads` lacks are dropped and
    heads it lacks are newly initialised. The report says which, and anything else is an error: a head
    kept under the same name must have the same level and outputs (and pooling, if pooled).
    """
    heads = {name: HeadSpec.parse(spec) for name, spec in heads.items()}
    if (Path(source) / META_FILE).exists():  # an xstilts checkpoint: whole, or an error naming it
        problem = checkpoint_problem(source)
        if problem is not None:
            raise XstiltsError(f"checkpoint {source} {problem}; {_REDO}")
        from transformers import AutoConfig, AutoModel

        _check_carried_heads(read_meta(source), heads, pooling)
        from transformers.initialization import no_init_weights

        config = AutoConfig.from_pretrained(source)
        with no_init_weights():  # every encoder tensor is loaded below (a missing one is an error)
            encoder = AutoModel.from_config(config, **base_model_kwargs(config))
        tokenizer = load_tokenizer(source)
        model = _with_heads(encoder, heads, seed, pooling)
        try:
            weights = load_file(str(Path(source) / WEIGHTS_FILE))
        except Exception as err:  # safetensors raises its own error type for damaged content
            raise XstiltsError(f"checkpoint {source} has a damaged {WEIGHTS_FILE}: {err}; {_REDO}") from None
        report = load_phase_state(model, weights)
        return model, tokenizer, report
    encoder, tokenizer = load_encoder(str(source))
    model = _with_heads(encoder, heads, seed, pooling)
    report = LoadReport(loaded=[f"encoder.{k}" for k in encoder.state_dict()], new_heads=sorted(heads))
    return model, tokenizer, report
