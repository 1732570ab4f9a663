"""Atomic file writing and cache locations: an interrupted run never leaves a half-written file."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Root of xstilts' caches; `XSTILTS_CACHE` overrides the per-user default."""
    root = os.environ.get("XSTILTS_CACHE") or platformdirs.user_cache_dir("xstilts")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_file(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the target is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Build a directory under a temp name and swap it into place only when complete.

    Replacing an existing directory never leaves a moment without one: the two are exchanged in one
    step where the OS allows it, else the old one is renamed aside (`.NAME.*.old`) until the new one is
    in place, and `restore_set_aside` puts it back if a kill fell between the two renames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


ASIDE_SUFFIX = ".old"


def _swap_into_place(new: Path, path: Path) -> None:
    if not path.exists():
        os.replace(new, path)
    elif _exchange(new, path):  # `path` is the new tree now, `new` the old one
        shutil.rmtree(new, ignore_errors=True)
    else:
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{ASIDE_SUFFIX}")
        os.replace(path, aside)
        os.replace(new, path)
        shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the OS cannot."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # this filesystem or kernel cannot
        return False
    raise OSError(code, os.strerror(code), str(b))


def restore_set_aside(root: Path) -> list[Path]:
    """Directories that `atomic_dir` set aside under `root`: put back where a kill left no replacement,
    else removed. Returns the paths handled. Safe only while nothing writes under `root`."""
    handled = []
    for aside in sorted(Path(root).rglob(f".*{ASIDE_SUFFIX}")):
        name = aside.name[1:].rsplit(".", 2)[0]  # ".NAME.<random>.old" -> NAME
        target = aside.with_name(name)
        if not aside.is_dir():
            continue
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, target)
        handled.append(aside)
    return handled


def safetensors_problem(file: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then the data its offsets end at."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if 8 + length > size:
                raise ValueError("its header runs past the end of the file")
            header = json.loads(handle.read(length))
        tensors = [entry for key, entry in header.items() if key != "__metadata__"]
        end = max((entry["data_offsets"][1] for entry in tensors), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as err:
        return f"has a damaged {file.name} ({size} bytes: {err})"
    if size != 8 + length + end:
        return f"has a truncated {file.name} ({size} of {8 + length + end} bytes)"
    return None
