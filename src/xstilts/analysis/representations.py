"""Sentence representations at every layer: one forward pass per batch, cached on disk (memory-mapped).

`extract_layers` pools the requested `hidden_states` (0 = embeddings output) of one forward pass per
length-sorted batch. `cached_layers` keys them by checkpoint weights, tokenizer, texts, layer set, pooling
and max_length, and loads the encoder only when the cache misses; hits come back as read-only memmaps.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from xstilts.errors import XstiltsError
from xstilts.io import atomic_file, cache_dir, file_sha256
from xstilts.models.pooling import POOLINGS, pool
from xstilts.tasks.kinds import get_kind, sequence_lengths

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "vocab.txt", "vocab.json")


# --- extraction ---------------------------------------------------------------------------------


def _check_layers(layers: Sequence[int] | None, n_layers: int) -> tuple[int, ...]:
    """The hidden_states indices asked for (None = all, 0..n_layers), validated and deduplicated in order."""
    if layers is None:
        return tuple(range(n_layers + 1))
    chosen = tuple(dict.fromkeys(int(k) for k in layers))
    bad = [k for k in chosen if not 0 <= k <= n_layers]
    if bad or not chosen:
        raise ValueError(f"layers {bad or '[]'} do not exist: the encoder has hidden_states 0..{n_layers}")
    return chosen


@torch.inference_mode()
def extract_layers(
    encoder,
    tokenizer,
    texts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 128,
) -> np.ndarray:
    """(n_layers_selected, n_texts, hidden) float32 pooled hidden states, texts in input order.

    Every requested layer comes from the same forward pass (`output_hidden_states=True`), one per batch;
    batches are length-sorted so padding stays small, and mean pooling masks the padding, so a sentence's
    vector does not depend on what it was batched with. Pooling runs in float32 whatever the model dtype.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    chosen = _check_layers(layers, encoder.config.num_hidden_layers)
    kind = get_kind("retrieval")
    features = kind.encode([{"text": text} for text in texts], tokenizer, max_length)
    out = np.zeros((len(chosen), len(features), encoder.config.hidden_size), dtype=np.float32)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    order = np.argsort(sequence_lengths(features), kind="stable")
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = kind.collate([features[i] for i in rows], tokenizer)
            mask = batch["attention_mask"].to(device)
            states = encoder(
                input_ids=batch["input_ids"].to(device), attention_mask=mask, output_hidden_states=True
            ).hidden_states
            for slot, layer in enumerate(chosen):
                out[slot, rows] = pool(states[layer].float(), mask, pooling).cpu().numpy()
    finally:
        encoder.train(was_training)
    return out


def center(vectors: np.ndarray) -> np.ndarray:
    """Subtract the mean over sentences (axis -2) per layer: (layers, n, h) or (n, h), as float32.

    Callers center each language separately (removing the language-specific offset).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim < 2:
        raise ValueError(f"expected (..., sentences, hidden) vectors, got shape {vectors.shape}")
    return vectors - vectors.mean(axis=-2, keepdims=True, dtype=np.float64).astype(np.float32)


# --- identities ---------------------------------------------------------------------------------

_HASHES: dict[tuple[str, int, int], str] = {}


def cached_file_sha256(path: Path) -> str:
    """`file_sha256`, remembered per (resolved path, size, mtime) in memory and beside the cache root."""
    path = Path(path).resolve()
    stat = path.stat()
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo_key in _HASHES:
        return _HASHES[memo_key]
    memo_name = hashlib.sha256(repr(memo_key).encode()).hexdigest()[:32]
    memo = cache_dir() / "representations" / "file-hashes" / f"{memo_name}.txt"
    digest = memo.read_text().strip() if memo.exists() else ""
    if len(digest) != 64:
        digest = file_sha256(path)
        with atomic_file(memo) as handle:
            handle.write(digest + "\n")
    _HASHES[memo_key] = digest
    return digest


def _weights_file(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).exists():
            return directory / name
    raise XstiltsError(f"checkpoint {directory} has no weights file ({', '.join(WEIGHT_FILES)})")


def resolve_source(source: str | Path) -> Path:
    """The local directory holding `source`: a checkpoint directory, a built-in model or a cached hub id."""
    from xstilts.models.loading import resolve_model

    if Path(source).is_dir():
        return Path(source)
    resolved = resolve_model(str(source))
    if Path(resolved).is_dir():
        return Path(resolved)
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(resolved, "config.json")
    if not isinstance(config, str):
        raise XstiltsError(f"model {source!r} is not available locally; representations need its files")
    return Path(config).parent


def checkpoint_identity(source: str | Path) -> str:
    """sha256 of the checkpoint's weights file (built-in names resolve to their converted directory)."""
    return cached_file_sha256(_weights_file(resolve_source(source)))


def tokenizer_files_identity(directory: Path) -> str:
    """sha256 of the checkpoint's vocabulary file: tokenizer.json, else the slow tokenizer's vocabulary.

    tokenizer_config.json is left out: `save_pretrained` rewrites it with fields that change nothing.
    """
    directory = Path(directory)
    for name in TOKENIZER_FILES:
        if (directory / name).exists():
            return f"{name}:{cached_file_sha256(directory / name)}"
    raise XstiltsError(f"checkpoint {directory} has no tokenizer files ({', '.join(TOKENIZER_FILES)})")


def tokenizer_identity(tokenizer) -> str:
    """Identity of a loaded tokenizer: class, size and (fast tokenizers) its full serialisation."""
    digest = hashlib.sha256(f"{type(tokenizer).__name__}:{len(tokenizer)}\n".encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    return digest.hexdigest()


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 over the texts, each length-prefixed so that no two different lists can collide by joining."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def _num_hidden_layers(directory: Path) -> int:
    config = json.loads((directory / "config.json").read_text())
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        if name in config:
            return int(config[name])
    raise XstiltsError(f"{directory}/config.json does not give the number of layers")


# --- cache --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepresentationKey:
    """Everything the vectors depend on; `digest` names the cache files."""

    checkpoint: str
    tokenizer: str
    texts: str
    n_texts: int
    layers: tuple[int, ...]
    pooling: str
    max_length: int
    version: int = FORMAT_VERSION

    def parts(self) -> dict:
        return {**asdict(self), "layers": list(self.layers)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.parts(), sort_keys=True).encode()).hexdigest()


class RepresentationCache:
    """`<root>/<digest>.npy` (float32, written atomically) plus `<digest>.json` (the key, written last).

    A file whose size, shape or dtype disagrees with its JSON is reported and recomputed, never used.
    """

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "representations"

    def paths(self, key: RepresentationKey) -> tuple[Path, Path]:
        digest = key.digest()
        return self.root / f"{digest}.npy", self.root / f"{digest}.json"

    def load(self, key: RepresentationKey) -> np.memmap | None:
        """The stored vectors as a read-only memmap, or None if absent or not trustworthy."""
        array_path, meta_path = self.paths(key)
        if not meta_path.exists() or not array_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            shape = tuple(meta["shape"])
            if meta.get("key") != key.parts():
                raise ValueError("the stored key differs from the requested one")
            array = np.load(array_path, mmap_mode="r")
            if array.shape != shape or array.dtype != np.float32:
                raise ValueError(f"array {array.shape} {array.dtype} but JSON says {shape} float32")
            if array_path.stat().st_size != array.offset + array.nbytes:
                raise ValueError("file size does not match its header")
            if meta.get("npy_bytes") not in (None, array_path.stat().st_size):
                raise ValueError("file size differs from the size recorded when it was written")
        except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
            log.warning("representation cache %s is corrupt (%s); recomputing", array_path.name, err)
            return None
        return array

    def store(self, key: RepresentationKey, vectors: np.ndarray) -> np.memmap:
        array_path, meta_path = self.paths(key)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        meta_path.unlink(missing_ok=True)  # the JSON marks a complete entry; drop it before replacing
        with atomic_file(array_path, "wb") as handle:
            np.save(handle, vectors)
        meta = {"key": key.parts(), "shape": list(vectors.shape), "dtype": "float32"}
        meta["npy_bytes"] = array_path.stat().st_size
        with atomic_file(meta_path) as handle:
            json.dump(meta, handle, indent=2)
        return np.load(array_path, mmap_mode="r")

    def get_or_compute(self, key: RepresentationKey, compute: Callable[[], np.ndarray]) -> np.memmap:
        """Stored vectors if present and sound; otherwise `compute()`, stored, then memory-mapped."""
        found = self.load(key)
        if found is not None:
            return found
        vectors = compute()
        expected = (len(key.layers), key.n_texts)
        if tuple(vectors.shape[:2]) != expected:
            raise ValueError(f"computed vectors {vectors.shape} do not match the key's {expected}")
        return self.store(key, vectors)


def representation_key(
    source: str | Path,
    texts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    max_length: int = 128,
) -> RepresentationKey:
    """The cache key of `source` (checkpoint dir, built-in name, cached hub id) on `texts`; loads no model."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    directory = resolve_source(source)
    return RepresentationKey(
        checkpoint=checkpoint_identity(directory),
        tokenizer=tokenizer_files_identity(directory),
        texts=texts_sha256(texts),
        n_texts=len(texts),
        layers=_check_layers(layers, _num_hidden_layers(directory)),
        pooling=pooling,
        max_length=int(max_length),
    )


def load_source_encoder(source: str | Path, device: str | torch.device | None = None):
    """(encoder, tokenizer) of a phase checkpoint or a model name; heads, if any, are dropped."""
    from xstilts.models.checkpoint import build_model

    model, tokenizer, _ = build_model(str(source), {})
    encoder = model.encoder
    if device is not None:
        encoder.to(device)
    return encoder, tokenizer


def cached_layers(
    source: str | Path,
    texts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    max_length: int = 128,
    batch_size: int = 64,
    cache: RepresentationCache | None = None,
    device: str | torch.device | None = None,
    encoder_loader: Callable | None = None,
) -> np.memmap:
    """`extract_layers` of `source` on `texts` through the cache: the encoder is loaded only on a miss.

    `encoder_loader(source, device)` -> (encoder, tokenizer) replaces the default loader (tests use it).
    """
    texts = list(texts)
    key = representation_key(source, texts, layers=layers, pooling=pooling, max_length=max_length)
    cache = cache or RepresentationCache()

    def compute() -> np.ndarray:
        if device is None:
            chosen = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            chosen = device
        encoder, tokenizer = (encoder_loader or load_source_encoder)(source, chosen)
        return extract_layers(
            encoder,
            tokenizer,
            texts,
            layers=key.layers,
            pooling=pooling,
            batch_size=batch_size,
            max_length=max_length,
        )

    return cache.get_or_compute(key, compute)


__all__ = [
    "RepresentationCache",
    "RepresentationKey",
    "cached_layers",
    "center",
    "checkpoint_identity",
    "extract_layers",
    "representation_key",
    "texts_sha256",
    "tokenizer_identity",
]
