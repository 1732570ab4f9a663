"""Load a DataRef's split from the Hugging Face hub, or from a local mirror of hub dataset repositories.

A hub mirror is a directory holding clones of hub dataset repos in the hub's own layout,
`<mirror>/<owner>/<name>/` (README.md whose YAML front matter lists `configs:` with their `data_files`,
and the data files), e.g. made with `hf download <owner>/<name> --repo-type dataset --local-dir
<mirror>/<owner>/<name>` or `git clone https://huggingface.co/datasets/<owner>/<name>` on a machine with
internet. When a mirror holds the dataset it is read with `datasets.load_dataset(<mirror>/<owner>/<name>,
config, split=...)` and the network is never touched. Without one, the hub (or the datasets cache when
offline) is used; an unreachable hub fails within seconds instead of hanging in retries.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.models.loading import HUB_HOST, hub_offline, hub_reachable
from xstilts.tasks.languages import template_values
from xstilts.tasks.spec import DataRef

MIRROR_ENV = "XSTILTS_HUB_MIRROR"
_TRUE = {"1", "true", "yes", "on"}
_SCRIPTS_UNSUPPORTED = "Dataset scripts are no longer supported"
_PROBE_TTL_S = 60.0
_probe: tuple[float, bool] | None = None  # (monotonic time, reachable): one probe serves a whole split


def fill(template: str | None, lang: str) -> str | None:
    """A DataRef template with {lang}, {language_name} and {iso3} filled in."""
    return None if template is None else template.format(**template_values(lang))


def resolve_mirror(hub_mirror: str | os.PathLike | None) -> Path | None:
    """The mirror directory: the argument, else $XSTILTS_HUB_MIRROR, else none."""
    value = hub_mirror if hub_mirror is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise XstiltsError(f"hub mirror {path} is not a directory")
    return path


def mirror_repo(mirror: Path | None, hub: str) -> Path | None:
    """`<mirror>/<owner>/<name>` when the mirror holds that dataset repository."""
    if mirror is None:
        return None
    repo = mirror / hub
    return repo if (repo / "README.md").is_file() or (repo.is_dir() and any(repo.iterdir())) else None


def _offline_requested() -> bool:
    import datasets

    return (
        hub_offline()
        or os.environ.get("HF_DATASETS_OFFLINE", "0").lower() in _TRUE
        or bool(datasets.config.HF_HUB_OFFLINE)
    )


def _reachable() -> bool:
    global _probe
    now = time.monotonic()
    if _probe is None or now - _probe[0] > _PROBE_TTL_S:
        _probe = (now, hub_reachable())
    return _probe[1]


def iter_rows(dataset, batch_size: int = 1024) -> Iterator[dict]:
    """The rows of a `datasets.Dataset` as dicts, read a batch at a time (much faster than row by row)."""
    for batch in dataset.iter(batch_size=batch_size):
        columns = list(batch)
        for i in range(len(batch[columns[0]]) if columns else 0):
            yield {column: batch[column][i] for column in columns}


@contextlib.contextmanager
def _forced_offline() -> Iterator[None]:
    """Offline mode for one call (the hub did not answer the probe): cached datasets still load."""
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _describe(hub: str, config: str | None, split: str | None) -> str:
    return f"{hub}" + (f" config {config}" if config else "") + (f" split {split}" if split else "")


def _load_parquet_export(hub: str, config: str | None, split: str):
    """Script-only repos (no longer loadable by `datasets`): the hub's automatic parquet export."""
    from datasets import load_dataset

    files = f"hf://datasets/{hub}@refs%2Fconvert%2Fparquet/{config or 'default'}/{split}/*.parquet"
    return load_dataset("parquet", data_files={split: files}, split=split)


def load_split(ref: DataRef, lang: str, *, hub_mirror=None, local_hint: str | None = None):
    """The `datasets.Dataset` of one DataRef in one language (templates filled), from the mirror or hub.

    `local_hint` (where the original file would be) is added to the error message when nothing loads.
    """
    from datasets import load_dataset

    if ref.dataset_path is None:
        raise XstiltsError(f"data reference {ref} has no hub dataset")
    config, split = fill(ref.dataset_name, lang), ref.split
    what = _describe(ref.dataset_path, config, split)
    mirror = resolve_mirror(hub_mirror)
    repo = mirror_repo(mirror, ref.dataset_path)
    if repo is not None:
        try:
            return load_dataset(str(repo), config, split=split)
        except Exception as err:  # datasets raises ValueError, FileNotFoundError, ... for a bad mirror
            raise XstiltsError(f"could not load {what} from the hub mirror {repo}: {err}") from err

    fixes = [
        f"pass a hub mirror directory holding {ref.dataset_path} (a clone of https://huggingface.co/datasets/{ref.dataset_path})"
    ]
    if local_hint:
        fixes.append(f"put the original file at {local_hint} and pass that data directory")
    offline = _offline_requested()
    reachable = offline or _reachable()
    if offline:
        why = "it is not in the local datasets cache and offline mode is set (HF_HUB_OFFLINE)"
    elif not reachable:
        why = f"it is not in the local datasets cache and the hub ({HUB_HOST}) cannot be reached"
    else:
        why = "loading failed"
    if mirror is not None:
        why += f"; the hub mirror {mirror} has no {ref.dataset_path}"
    if not offline:
        fixes.insert(0, "connect to the internet once so the datasets cache holds it")

    guard = _forced_offline() if not reachable and not offline else contextlib.nullcontext()
    try:
        with guard:
            try:
                return load_dataset(ref.dataset_path, config, split=split)
            except RuntimeError as err:
                if _SCRIPTS_UNSUPPORTED not in str(err) or offline or not reachable:
                    raise
                return _load_parquet_export(ref.dataset_path, config, split)
    except XstiltsError:
        raise
    except Exception as err:
        detail = f"{type(err).__name__}: {err}".splitlines()[0]
        raise XstiltsError(
            f"cannot load {what} from the Hugging Face hub: {why} ({detail}). To fix: {'; or '.join(fixes)}"
        ) from err
