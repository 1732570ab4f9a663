"""Raw multilingual text and masked-LM batches for the MLM baseline (intermediate task + MLM).

Phang et al. (2020) mix a masked-LM objective on multilingual raw text into intermediate-task training.
Here the text comes from the user's files (one sentence or paragraph per line) or, offline, from the
embedded Bible translations. Masking is transformers' `DataCollatorForLanguageModeling` (15% of the
non-special tokens; of those 80% -> <mask>, 10% -> a random token, 10% unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xstilts.errors import XstiltsError

BIBLE = "bible"
MLM_PROBABILITY = 0.15


# --------------------------------------------------------------------------- raw text


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise XstiltsError(f"raw text file {path} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise XstiltsError(f"raw text file {path} is not valid UTF-8: {err}") from err
    lines = [line for raw in text.splitlines() if (line := " ".join(raw.split()))]
    if not lines:
        raise XstiltsError(f"raw text file {path} is empty (it needs one sentence or paragraph per line)")
    return lines


def _text_files(source: str | Path | Sequence[str | Path], languages: Sequence[str] | None) -> list[Path]:
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if path.is_dir():
            if languages:
                return [path / f"{lang}.txt" for lang in languages]  # missing ones fail in _read_lines
            files = sorted(path.glob("*.txt"))
            if not files:
                raise XstiltsError(f"raw text directory {path} has no *.txt files")
            return files
        paths = [path]
    else:
        paths = [Path(item).expanduser() for item in source]
        if not paths:
            raise XstiltsError("no raw text files given")
    if languages:
        raise XstiltsError(
            "languages select <lang>.txt files in a raw text directory; with explicit files, leave them out"
        )
    return paths


def _bible_streams(languages: Sequence[str] | None, benchmark_seed: int | None) -> dict[str, list[str]]:
    from xstilts.tasks.bible import BIBLE_LANGUAGES, chapter_splits, load_verses

    held_out = set()
    if benchmark_seed is not None:
        held_out = {chapter for chapter, split in chapter_splits(benchmark_seed).items() if split != "train"}
    streams = {}
    for lang in languages or BIBLE_LANGUAGES:
        verses = load_verses(lang)
        streams[lang] = [text for key, text in sorted(verses.items()) if key[:2] not in held_out]
    return streams


def _quotas(sizes: list[int], limit: int) -> list[int]:
    """`limit` items split as evenly as possible over streams of the given sizes (a small stream gives
    all it has and the others share the rest)."""
    quotas = [0] * len(sizes)
    remaining = limit
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for rank, i in enumerate(order):
        share = -(-remaining // (len(sizes) - rank))  # ceil
        quotas[i] = min(sizes[i], share)
        remaining -= quotas[i]
    return quotas


def _mix(streams: dict[str, list[str]], limit: int | None, seed: int) -> list[str]:
    """A seeded sample of `limit` lines (None: all), balanced across streams, in shuffled order."""
    rng = np.random.default_rng([seed, 0x31A])
    names = list(streams)
    sizes = [len(streams[name]) for name in names]
    quotas = sizes if limit is None else _quotas(sizes, limit)
    lines: list[str] = []
    for name, size, quota in zip(names, sizes, quotas, strict=True):
        chosen = rng.choice(size, size=quota, replace=False) if quota < size else np.arange(size)
        lines.extend(streams[name][i] for i in chosen)
    return [lines[i] for i in rng.permutation(len(lines))]


def raw_text(
    source: str | Path | Sequence[str | Path],
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    *,
    benchmark_seed: int | None = None,
) -> list[str]:
    """Lines of multilingual raw text for masked-LM training, in a seeded shuffled order.

    `source` is:
    - "bible": verses of the embedded Bible translations of `languages` (default: all of them).
      `benchmark_seed`, when given, leaves out the dev and test chapters of the embedded benchmark's
      splits for that seed, so MLM never reads the evaluation text (not even unlabelled).
    - a directory: its `*.txt` files, or with `languages` exactly `<lang>.txt` for each of them;
    - a file path or a list of file paths (UTF-8, one sentence or paragraph per line; blank lines are
      skipped). A missing, empty or undecodable file is an error naming it.
    Each language (Bible) or file is one stream; `limit` lines are sampled as evenly as possible across
    streams (a stream smaller than its share gives all its lines), then all are shuffled together.
    """
    if limit is not None and limit < 1:
        raise XstiltsError(f"the raw text limit must be at least 1, not {limit}")
    if isinstance(source, str) and source == BIBLE:
        streams = _bible_streams(languages, benchmark_seed)
    else:
        if benchmark_seed is not None:
            raise XstiltsError("benchmark_seed only applies to the embedded Bible text")
        streams = {str(path): _read_lines(path) for path in _text_files(source, languages)}
    return _mix(streams, limit, seed)


# --------------------------------------------------------------------------- features and masking


def mlm_features(lines: Sequence[str], tokenizer, max_length: int) -> list[dict]:
    """Tokenised lines (truncated to `max_length` tokens) with their special-tokens mask.

    The mask lets the collator skip special tokens without recomputing it; blank lines, and lines with
    no ordinary token left after tokenisation, are dropped.
    """
    if max_length < 3:
        raise XstiltsError(f"max_length must leave room for a token between <s> and </s>, not {max_length}")
    lines = [line for line in lines if line.strip()]
    if not lines:
        return []
    encoded = tokenizer(lines, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    return [
        {"input_ids": ids, "attention_mask": mask, "special_tokens_mask": special}
        for ids, mask, special in zip(
            encoded["input_ids"], encoded["attention_mask"], encoded["special_tokens_mask"], strict=True
        )
        if not all(special)
    ]


def mlm_collator(
    tokenizer,
    mlm_probability: float = MLM_PROBABILITY,
    seed: int | None = None,
    pad_to_multiple_of: int | None = None,
):
    """transformers' `DataCollatorForLanguageModeling`: pads a list of `mlm_features` and masks them.

    Returns batches with input_ids (masked), attention_mask and labels (-100 except at masked
    positions). `seed` gives the collator its own torch Generator (per DataLoader worker: seed + worker
    id), so the masks do not depend on the global RNG.
    """
    from transformers import DataCollatorForLanguageModeling

    if tokenizer.mask_token is None:
        raise XstiltsError(f"tokenizer {type(tokenizer).__name__} has no mask token; it cannot do MLM")
    return DataCollatorForLanguageModeling(
        tokenizer=tokenizer,
        mlm=True,
        mlm_probability=mlm_probability,
        mask_replace_prob=0.8,
        random_replace_prob=0.1,
        pad_to_multiple_of=pad_to_multiple_of,
        seed=seed,
        return_tensors="pt",
    )
