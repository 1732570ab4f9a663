"""Where examples come from. Each source maps (task, split, language, seed, limit) to example dicts.

- "bible": the embedded offline benchmark (`bible.py`).
- "datasets": the task's DataRefs: the original file under `data_dir` when one is given and the file is
  there, else the hub (a hub mirror directory first; see `hub.py`).
- "local": original files under `data_dir` only (CCG: CCGbank is licensed).

All DataRefs of a split are concatenated (ANLI+ train = SNLI + MNLI + ANLI rounds 1-3). A DataRef with
`language` set is read in that language whatever the requested one (XNLI trains on English MNLI).

Every example gets an "id": the dataset's own when it has one (made unique with a "-<k>" suffix if it
repeats), else "<task>-<split>-<lang>-<index>". Besides the schemas in `spec.py`:

- retrieval examples are {"id", "text", "translation"}: text in `lang`, its translation in English;
- mining (BUCC) gives ONE example per (split, lang): {"id": "<lang>-en", "source": {id: text} in `lang`,
  "target": {id: text} in English, "gold": [[source_id, target_id], ...]}. The original release's files
  hold the full candidate pools; google/xtreme's bucc18 configs hold only the gold pairs, so mining on
  the hub's data is degenerate (every sentence has its translation, and no distractor, in the pool).
- ranking (LAReQA, Mewsli-X): the adapters yield parts of problems (`tasks/ranking.py`); the train split
  becomes {"id", "query", "candidate"} pairs, drawn by `limit` as usual, and every other split ONE
  problem per (split, lang), its queries capped by `limit` (the candidate pool is never cut). A problem
  may need other languages' files: LAReQA's test split lists XQuAD-R in all 11 languages as DataRefs
  pinned to their language, and only the requested language's questions become queries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from xstilts.errors import XstiltsError, unknown_name
from xstilts.tasks import local_files
from xstilts.tasks.adapters import ADAPTERS, RecordError
from xstilts.tasks.hub import fill, iter_rows, load_split
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import DataRef, TaskSpec

Loader = Callable[..., list[dict]]

CCG_HELP = (
    "CCGbank is licensed (LDC2005T13) and cannot be downloaded: convert it to one 'word<TAB>supertag' "
    "line per token with a blank line between sentences, as ccg/ccg.train.tsv (sections 02-21), "
    "ccg/ccg.dev.tsv (section 00) and ccg/ccg.test.tsv (section 23) under the data directory"
)


def _bible(spec: TaskSpec, split: str, lang: str, *, seed: int, limit: int | None, **_) -> list[dict]:
    from xstilts.tasks import bible

    examples = bible.build_examples(spec.name, split, lang, seed=seed, limit=limit)
    if get_kind(spec.kind).parallel_translation:  # same ids in the same order in every language
        english = bible.build_examples(spec.name, split, "en", seed=seed, limit=limit)
        for example, translation in zip(examples, english, strict=True):
            if example["id"] != translation["id"]:  # pragma: no cover - guaranteed by bible.build_examples
                raise XstiltsError(f"bible retrieval ids differ between {lang} and en")
            example["translation"] = translation["text"]
    return examples


def _local_path(ref: DataRef, lang: str, data_dir) -> Path | None:
    if data_dir is None or ref.local_file is None:
        return None
    return Path(data_dir).expanduser() / fill(ref.local_file, lang)


def _local_file(spec: TaskSpec, ref: DataRef, lang: str, *, data_dir, local_only: bool) -> Path | None:
    """The original file a DataRef is read from, or None for the hub; a local-only file must exist."""
    path = _local_path(ref, lang, data_dir)
    if path is not None and local_files.primary_file(ref.local_format, path).exists():
        return path
    if local_only or ref.dataset_path is None:
        if data_dir is None:
            raise XstiltsError(
                f"task {spec.name} reads local files only: pass a data directory holding "
                f"{fill(ref.local_file, lang)}" + (f"; {CCG_HELP}" if spec.name == "ccg" else "")
            )
        missing = local_files.primary_file(ref.local_format, path)
        raise XstiltsError(
            f"data file not found: {missing}" + (f"; {CCG_HELP}" if spec.name == "ccg" else "")
        )
    return None


def local_files_read(spec: TaskSpec, split: str, lang: str, data_dir=None) -> list[Path]:
    """Every original file `load_examples` would read for this split (none for the Bible or the hub), so
    that they can be checked before any training; a missing local-only file raises as loading would."""
    if spec.source not in ("datasets", "local"):
        return []
    files = []
    for ref in spec.data.get(split, ()):
        path = _local_file(
            spec, ref, ref.language or lang, data_dir=data_dir, local_only=spec.source == "local"
        )
        if path is not None:
            files.extend(local_files.files_of(ref.local_format, path))
    return files


def _rows(spec: TaskSpec, ref: DataRef, lang: str, *, data_dir, hub_mirror, local_only: bool):
    """(where, raw record) pairs of one DataRef: from the original file when present, else the hub."""
    path = _local_file(spec, ref, lang, data_dir=data_dir, local_only=local_only)
    if path is not None:
        empty = True
        for position, record in local_files.read_records(ref.local_format, path):
            empty = False
            yield local_files.describe_position(ref.local_format, path, position), record
        if empty:
            raise XstiltsError(f"{path}: no records in the data file; check the download or the path")
        return
    path = _local_path(ref, lang, data_dir)
    hint = str(path) if path else (f"<data_dir>/{fill(ref.local_file, lang)}" if ref.local_file else None)
    dataset = load_split(ref, lang, hub_mirror=hub_mirror, local_hint=hint)
    where = f"{ref.dataset_path} {fill(ref.dataset_name, lang) or ''} [{ref.split}] row".replace("  ", " ")
    for index, record in enumerate(iter_rows(dataset)):
        yield f"{where} {index}", record


def _adapted(spec: TaskSpec, ref: DataRef, lang: str, **kwargs) -> Iterator[dict]:
    try:
        adapter = ADAPTERS[ref.adapter]
    except KeyError:
        raise unknown_name("adapter", ref.adapter, ADAPTERS) from None
    for where, record in _rows(spec, ref, lang, **kwargs):
        try:
            yield from adapter(record, spec, lang)
        except RecordError as err:
            raise XstiltsError(f"{where}: {err}") from None


def auto_id_prefix(task: str, split: str, lang: str) -> str:
    """The start of the id given to a record without one: "<task>-<split>-<lang>", then "-<index>"."""
    return f"{task}-{split}-{lang}"


def _assign_ids(examples: list[dict], prefixes: list[str]) -> list[dict]:
    """The dataset's id, or "<prefix>-<index>" (index in the whole split); repeats get "-<k>" appended."""
    seen: dict[str, int] = {}
    out = []
    for index, (example, prefix) in enumerate(zip(examples, prefixes, strict=True)):
        example_id = str(example.get("id") or f"{prefix}-{index}")
        if example_id in seen:
            seen[example_id] += 1
            example_id = f"{example_id}-{seen[example_id]}"
        seen.setdefault(example_id, 0)
        out.append({**example, "id": example_id} if "id" in example else {"id": example_id, **example})
    return out


def subset(examples: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded random subset of `limit` examples, kept in their original order."""
    if limit is None or limit >= len(examples):
        return examples
    chosen = np.random.default_rng(seed).choice(len(examples), size=limit, replace=False)
    return [examples[i] for i in sorted(chosen)]


def _merge_mining(parts: list[dict], lang: str) -> list[dict]:
    source: dict[str, str] = {}
    target: dict[str, str] = {}
    gold: list[list[str]] = []
    seen: set[tuple[str, str]] = set()
    for part in parts:
        source.update(part["source"])
        target.update(part["target"])
        for pair in part["gold"]:
            if tuple(pair) not in seen:
                seen.add(tuple(pair))
                gold.append(list(pair))
    return [{"id": f"{lang}-en", "source": source, "target": target, "gold": gold}]


def _from_refs(
    spec: TaskSpec, split: str, lang: str, *, seed: int, limit: int | None, data_dir, hub_mirror, local_only
) -> list[dict]:
    refs = spec.data.get(split)
    if not refs:
        raise XstiltsError(f"task {spec.name} has no data for split {split}")
    kind = get_kind(spec.kind)
    if not spec.labels and kind.tags_from_train_file:
        spec = replace(spec, labels=task_labels(spec, data_dir))
    examples: list[dict] = []
    prefixes: list[str] = []
    pairs = kind.problem_parts and split == "train"
    for ref in refs:
        ref_lang = ref.language or lang
        reading = {"data_dir": data_dir, "hub_mirror": hub_mirror, "local_only": local_only}
        adapted = _adapted(spec, ref, ref_lang, **reading)
        part = [pair for p in adapted for pair in kind.training_pairs(p)] if pairs else list(adapted)
        examples.extend(part)
        prefixes.extend([auto_id_prefix(spec.name, split, ref_lang)] * len(part))
    if kind.one_example_per_language:
        return _merge_mining(examples, lang)  # one example: `limit` does not apply
    if kind.problem_parts and not pairs:  # one problem: `limit` caps its queries
        where = f"task {spec.name} {split} {lang}"
        return kind.merge_parts(examples, lang, limit=limit, seed=seed, where=where)
    return subset(_assign_ids(examples, prefixes), limit, seed)


def _datasets(spec: TaskSpec, split: str, lang: str, *, seed, limit, data_dir=None, hub_mirror=None):
    return _from_refs(
        spec, split, lang, seed=seed, limit=limit, data_dir=data_dir, hub_mirror=hub_mirror, local_only=False
    )


def _local(spec: TaskSpec, split: str, lang: str, *, seed, limit, data_dir=None, hub_mirror=None):
    return _from_refs(
        spec, split, lang, seed=seed, limit=limit, data_dir=data_dir, hub_mirror=None, local_only=True
    )


SOURCES: dict[str, Loader] = {"bible": _bible, "datasets": _datasets, "local": _local}


def load_examples(
    spec: TaskSpec,
    split: str,
    lang: str,
    *,
    seed: int = 0,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    hub_mirror: str | Path | None = None,
) -> list[dict]:
    """Examples of one task split in one language; `limit` draws a subset with `seed` (original order)."""
    if split not in spec.splits:
        raise unknown_name(f"split of task {spec.name}", split, spec.splits)
    # a split pinned to one language is read in it, a language the task may not be tested in (XCOPA's
    # English COPA training data)
    pinned = {ref.language for ref in spec.data.get(split, ())} == {lang}
    if lang not in spec.languages and not pinned:
        raise unknown_name(f"language for task {spec.name}", lang, spec.languages)
    if limit is not None and limit < 0:
        raise XstiltsError(f"limit must be >= 0, got {limit}")
    try:
        loader = SOURCES[spec.source]
    except KeyError:
        raise unknown_name("source", spec.source, SOURCES) from None
    return loader(spec, split, lang, seed=seed, limit=limit, data_dir=data_dir, hub_mirror=hub_mirror)


def translated_spec(spec: TaskSpec, lang: str, translate, data_dir=None) -> TaskSpec:
    """`spec` whose training split in `lang` is a translation (translate-train): the Bible tasks exist in
    every language already; other tasks read the user's files from `translate.files[task]` (a template
    under data_dir with {lang}), in the format of the task's own training files. With `data_dir`, a missing
    file is an error that names the languages whose translation file is there."""
    if spec.source == "bible":
        return spec
    template = translate.files.get(spec.name)
    if template is None:
        raise XstiltsError(
            f"no translated training data for task {spec.name} in {lang}: set translate.files.{spec.name} "
            "to a path template under data_dir, e.g. XTREME's translate-train release"
        )
    original = spec.data["train"][0]
    hub_fields = {"dataset_path": None, "dataset_name": None, "split": None}
    fmt = translate.formats.get(spec.name, original.local_format)
    ref = replace(original, **hub_fields, local_file=template, local_format=fmt, language=None)
    if data_dir is not None and not _translation_there(ref, lang, data_dir):
        from xstilts.tasks.languages import LANGUAGE_NAMES

        have = [code for code in sorted(LANGUAGE_NAMES) if _translation_there(ref, code, data_dir)]
        raise XstiltsError(
            f"no translation of {spec.name} for {lang}: {_local_path(ref, lang, data_dir)} does not exist; "
            f"languages with a translation file there: {', '.join(have) or 'none'}"
        )
    return replace(spec, source="local", languages=(*spec.languages, lang), data={"train": (ref,)})


def _translation_there(ref: DataRef, lang: str, data_dir) -> bool:
    return local_files.primary_file(ref.local_format, _local_path(ref, lang, data_dir)).exists()


@functools.lru_cache(maxsize=16)
def _tag_set(path: Path, fmt: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    tags: set[str] = set()
    for _position, record in local_files.read_records(fmt, path):
        tags.update(record["tags"])
    return tuple(sorted(tags))


def task_labels(spec: TaskSpec, data_dir: str | Path | None = None) -> tuple[str, ...]:
    """The task's label names: `spec.labels`, or (CCG) the sorted tag set of the training file."""
    if spec.labels or not get_kind(spec.kind).tags_from_train_file:
        return spec.labels
    refs = spec.data.get("train", ())
    if data_dir is None or not refs or refs[0].local_file is None:
        raise XstiltsError(
            f"task {spec.name} reads its tag set from the training file: pass a data directory"
            + (f"; {CCG_HELP}" if spec.name == "ccg" else "")
        )
    ref = refs[0]
    path = _local_path(ref, spec.train_language, data_dir)
    if not path.exists():
        raise XstiltsError(f"data file not found: {path}" + (f"; {CCG_HELP}" if spec.name == "ccg" else ""))
    stat = path.stat()
    return _tag_set(path, ref.local_format, stat.st_mtime_ns, stat.st_size)
