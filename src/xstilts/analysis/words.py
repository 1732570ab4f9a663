"""Word-level alignment: bilingual dictionaries (dictd), sub-token-mean word vectors, CSLS word retrieval.

dictd format (what Debian's `dict-freedict-eng-*` packages install under /usr/share/dictd):

- `NAME.index`: one line per headword, `headword<TAB>offset<TAB>length`, where offset and length are
  byte counts into the uncompressed data file, written as big-endian numbers in base 64 with the digits
  `A-Z a-z 0-9 + /` (no padding). Headwords are normalised (lower-cased, punctuation dropped); several
  index lines may point at one entry. Meta entries have headwords `00database...` (`00-database-...` in
  other dictfmt versions) and are skipped.
- `NAME.dict.dz` (dictzip: a gzip file with a random-access table, so plain gzip reads it) or `NAME.dict`.
  A FreeDict entry is the headword line `headword /pronunciation/ <pos>`, then translation lines
  (`Akut <masc>, Akut-Zeichen <neut> [print]`; older editions number senses `1. ...`), and indented
  examples (`"..." - ...`), `Note:`, `Synonym(s):` and `see:` lines, which are not translations.

Word vectors are the mean of a word's sub-token hidden states (special tokens excluded), the word encoded
on its own, for all requested layers from one forward pass per batch.

Word translation retrieval uses CSLS (Conneau et al. 2018): CSLS(x, y) = 2 cos(x, y) - r_P(x) - r_Q(y),
where r_P(x) is the mean cosine of the query x to its k nearest candidates in the pool and r_Q(y) the mean
cosine of the candidate y to its k nearest queries (all source words). In the "weak" setting the pool is the
target-language words; in the "strong" setting it also holds the other source-language words (never the
query itself), so a query whose nearest candidate is a word of its own language is counted wrong.

`measure_words` is the one-call measurement: gold pairs (from `word_pairs` on a dictionary or
`xstilts.analysis.word_alignment.aligned_word_pairs` on parallel text) -> `word_set` (distinct words per
side, gold as row pairs) -> one `word_vectors` call per side for all layers -> weak and strong CSLS
precision@1 per layer.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xstilts.analysis.alignment import warn_if_small
from xstilts.errors import XstiltsError

DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DIGIT_VALUE = {char: value for value, char in enumerate(DICTD_DIGITS)}
META_PREFIXES = ("00database", "00-database-")
SETTINGS = ("weak", "strong")

_ANNOTATION = re.compile(r"<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}|\([^()]*\)")
_LABEL = re.compile(r"^(synonyms?|antonyms?|see( also)?|notes?|examples?)\s*:", re.IGNORECASE)
_SENSE_NUMBER = re.compile(r"^\d+\.\s*")
_QUOTES = "\"'„“”«»‚‘’"
_WORD = re.compile(r"^[^\W\d_]+(?:[-'’][^\W\d_]+)*$")


# ---------------------------------------------------------------------------------------------- dictd


def decode_dictd_number(text: str) -> int:
    """A dictd base-64 number (`B` = 1, `BA` = 64); ValueError on a character outside the alphabet."""
    if not text:
        raise ValueError("empty number")
    value = 0
    for char in text:
        digit = _DIGIT_VALUE.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a dictd base-64 digit")
        value = value * 64 + digit
    return value


def encode_dictd_number(value: int) -> str:
    """The dictd base-64 spelling of a non-negative integer (inverse of `decode_dictd_number`)."""
    if value < 0:
        raise ValueError(f"negative number {value}")
    digits = []
    while True:
        value, digit = divmod(value, 64)
        digits.append(DICTD_DIGITS[digit])
        if value == 0:
            return "".join(reversed(digits))


def _data_file(index_path: Path) -> Path:
    stem = index_path.name[: -len(".index")] if index_path.name.endswith(".index") else index_path.stem
    candidates = [index_path.with_name(stem + ".dict.dz"), index_path.with_name(stem + ".dict")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = " or ".join(str(c) for c in candidates)
    raise XstiltsError(f"dictd index {index_path} has no data file: expected {names}")


def _read_data(path: Path) -> bytes:
    try:
        if path.name.endswith(".dz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise XstiltsError(f"cannot read dictd data file {path}: {error}") from error


def _headword(first_line: str) -> str:
    """The headword of a FreeDict entry's first line: the text before pronunciation or annotations."""
    cut = len(first_line)
    for marker in (" /", " <", " [", " ("):
        position = first_line.find(marker)
        if position >= 0:
            cut = min(cut, position)
    return first_line[:cut].strip()


def _translations(lines: Iterable[str]) -> list[str]:
    """Translations from an entry's lines after the headword line (examples, notes, cross-references out)."""
    found = []
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in _QUOTES and " - " in line or _LABEL.match(line):
            continue
        line = _SENSE_NUMBER.sub("", line)
        previous = None
        while previous != line:  # nested annotations, innermost first
            previous, line = line, _ANNOTATION.sub(" ", line)
        for part in re.split(r"[,;]", line):
            text = " ".join(part.split())
            if text and text not in found:
                found.append(text)
    return found


def parse_entry(text: str) -> tuple[str, list[str]]:
    """(headword, translations) of one FreeDict entry's text."""
    lines = text.strip("\n").split("\n")
    return _headword(lines[0]), _translations(lines[1:])


def load_dictd(index_path: str | Path) -> dict[str, list[str]]:
    """Headword -> translations (in order, without duplicates) from a dictd dictionary.

    `index_path` is the `.index` file; the data file next to it is `.dict.dz` or `.dict`. Headwords keep
    the spelling of the entry's first line (the index spelling is normalised); meta entries are skipped and
    an entry several index lines point at is read once. Errors name the file and line.
    """
    index_path = Path(index_path)
    if not index_path.is_file():
        raise XstiltsError(f"dictd index file {index_path} not found")
    data_path = _data_file(index_path)
    data = _read_data(data_path)
    try:
        index_lines = index_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise XstiltsError(f"cannot read dictd index file {index_path}: {error}") from error
    dictionary: dict[str, list[str]] = {}
    seen: set[tuple[int, int]] = set()
    for number, line in enumerate(index_lines, start=1):
        where = f"{index_path}:{number}"
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) not in (3, 4):
            raise XstiltsError(f"{where}: expected 'headword<TAB>offset<TAB>length', got {line!r}")
        key = fields[0]
        try:
            offset, length = decode_dictd_number(fields[1]), decode_dictd_number(fields[2])
        except ValueError as error:
            raise XstiltsError(f"{where}: bad offset or length in {line!r}: {error}") from error
        if offset + length > len(data):
            raise XstiltsError(
                f"{where}: entry at bytes {offset}..{offset + length} lies beyond the end of "
                f"{data_path} ({len(data)} bytes)"
            )
        if key.startswith(META_PREFIXES) or (offset, length) in seen:
            continue
        seen.add((offset, length))
        try:
            text = data[offset : offset + length].decode("utf-8")
        except UnicodeDecodeError as error:
            raise XstiltsError(f"{where}: entry in {data_path} is not UTF-8: {error}") from error
        headword, translations = parse_entry(text)
        headword = headword or key.strip()
        if not headword or not translations:
            continue
        known = dictionary.setdefault(headword, [])
        known.extend(t for t in translations if t not in known)
    return dictionary


def is_single_word(text: str) -> bool:
    """One word of letters (inner hyphens and apostrophes allowed): no spaces, digits or punctuation."""
    return bool(_WORD.match(text))


def word_pairs(
    dictionary: dict[str, Sequence[str]], max_pairs: int | None = None, seed: int = 0
) -> list[tuple[str, str]]:
    """Lower-cased single-word (source, translation) pairs, deduplicated, a seeded sample of `max_pairs`.

    The result is sorted; the same dictionary, `max_pairs` and seed always give the same pairs.
    """
    pairs = set()
    for headword, translations in dictionary.items():
        source = headword.strip().lower()
        if not is_single_word(source):
            continue
        for translation in translations:
            target = translation.strip().lower()
            if is_single_word(target):
                pairs.add((source, target))
    ordered = sorted(pairs)
    if max_pairs is not None and max_pairs < len(ordered):
        ordered = sorted(random.Random(seed).sample(ordered, max_pairs))
    return ordered


# ---------------------------------------------------------------------------------------- word vectors


def _checked_layers(layers: Sequence[int], n_states: int) -> list[int]:
    """`layers` as a list, each a valid hidden-state index (negative counts from the end)."""
    layers = list(layers)
    bad = [layer for layer in layers if not -n_states <= layer < n_states]
    if not layers or bad:
        raise XstiltsError(
            f"layers {bad or layers} out of range: this encoder has hidden states 0..{n_states - 1}"
        )
    return layers


def word_vectors(
    encoder,
    tokenizer,
    words: Sequence[str],
    layers: Sequence[int],
    batch_size: int = 128,
    max_length: int = 32,
    device: str | None = None,
) -> np.ndarray:
    """Mean sub-token hidden state of each word at each layer: float32 [n_layers, n_words, hidden].

    Each word is encoded alone (`is_split_into_words`, so it gets the same leading-space piece as inside
    a sentence); special tokens and padding are excluded from the mean. `layers` index the encoder's
    hidden states: 0 is the embedding output, 1..L the transformer layers, negative counts from the end.
    One forward pass per batch yields all layers.
    """
    import torch

    words = list(words)
    if not words:
        raise XstiltsError("word_vectors needs at least one word")
    if any(not isinstance(w, str) or not w.strip() for w in words):
        raise XstiltsError("word_vectors got an empty or non-string word")
    n_states = encoder.config.num_hidden_layers + 1
    layers = _checked_layers(layers, n_states)
    device = device or next(encoder.parameters()).device
    out = np.empty((len(layers), len(words), encoder.config.hidden_size), dtype=np.float32)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(words), batch_size):
                batch = words[start : start + batch_size]
                enc = tokenizer(
                    [[word] for word in batch],
                    is_split_into_words=True,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_special_tokens_mask=True,
                    return_tensors="pt",
                )
                mask = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()
                empty = [batch[i] for i in torch.nonzero(mask.sum(1) == 0).flatten().tolist()]
                if empty:
                    raise XstiltsError(f"words with no sub-tokens after tokenisation: {empty[:5]}")
                hidden = encoder(
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                    output_hidden_states=True,
                ).hidden_states
                weights = mask.to(device=device, dtype=hidden[0].dtype).unsqueeze(-1)
                counts = weights.sum(1)
                for row, layer in enumerate(layers):
                    mean = (hidden[layer] * weights).sum(1) / counts
                    out[row, start : start + len(batch)] = mean.float().cpu().numpy()
    finally:
        encoder.train(was_training)
    return out


# ------------------------------------------------------------------------------------- CSLS retrieval


def _unit(vectors: np.ndarray, name: str) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise XstiltsError(f"{name} must be a 2-d array of word vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _blocks(n: int, block: int) -> Iterable[slice]:
    for start in range(0, n, block):
        yield slice(start, min(n, start + block))


def _masked_cosines(
    queries: np.ndarray, keys: np.ndarray, rows: slice, self_offset: int | None
) -> np.ndarray:
    """Cosines of queries[rows] to all keys; key row i + self_offset (the query itself) set to -inf."""
    sims = queries[rows] @ keys.T
    if self_offset is not None:
        query_rows = np.arange(rows.start, rows.stop)
        key_cols = query_rows + self_offset
        inside = (key_cols >= 0) & (key_cols < len(keys))
        sims[np.nonzero(inside)[0], key_cols[inside]] = -np.inf
    return sims


def neighbourhood_radius(
    queries: np.ndarray, keys: np.ndarray, k: int, self_offset: int | None = None, block: int = 2048
) -> np.ndarray:
    """Mean cosine of each (unit) query to its k nearest (unit) keys, the query itself excluded.

    With `self_offset`, key row i + self_offset is query i itself and is never its own neighbour.
    """
    available = len(keys) - (1 if self_offset is not None else 0)
    k = min(k, available)
    if k < 1:
        raise XstiltsError(f"CSLS needs at least one neighbour candidate (got {len(keys)} keys)")
    radius = np.empty(len(queries), dtype=np.float64)
    for rows in _blocks(len(queries), block):
        sims = _masked_cosines(queries, keys, rows, self_offset)
        top = np.partition(sims, -k, axis=1)[:, -k:]
        radius[rows] = top.mean(axis=1)
    return radius


def csls_scores(source: np.ndarray, target: np.ndarray, k: int = 10) -> np.ndarray:
    """Dense CSLS matrix [n_source, n_target] between two small sets of vectors (weak setting)."""
    src, tgt = _unit(source, "source vectors"), _unit(target, "target vectors")
    r_src = neighbourhood_radius(src, tgt, k)
    r_tgt = neighbourhood_radius(tgt, src, k)
    return 2 * (src @ tgt.T).astype(np.float64) - r_src[:, None] - r_tgt[None, :]


@dataclass(frozen=True)
class WordRetrieval:
    """Precision@1 of CSLS word translation retrieval over the distinct source words of the gold pairs."""

    setting: str
    k: int
    precision: float
    n_queries: int
    n_correct: int
    queries: np.ndarray  # source rows queried (sorted, distinct)
    predicted: np.ndarray  # target row retrieved for each query; -1 where a source-language word won
    correct: np.ndarray  # bool per query


def word_retrieval(
    src_vecs: np.ndarray,
    tgt_vecs: np.ndarray,
    gold: Sequence[tuple[int, int]],
    setting: str = "weak",
    k: int = 10,
    block: int = 2048,
) -> WordRetrieval:
    """CSLS nearest-neighbour translation retrieval for the source words of `gold` (source row, target row).

    "weak": each query's candidates are all target words. "strong": the candidates are all target words
    and all other source words; retrieving a source-language word is wrong. A source word with several
    gold translations is correct when any of them is retrieved. The radii of CSLS use all source words as
    the query side and all candidates as the pool (k capped at what is available).
    """
    if setting not in SETTINGS:
        raise XstiltsError(f"unknown retrieval setting {setting!r}; valid settings: {', '.join(SETTINGS)}")
    if k < 1:
        raise XstiltsError(f"CSLS needs k >= 1, got {k}")
    src, tgt = _unit(src_vecs, "source vectors"), _unit(tgt_vecs, "target vectors")
    if src.shape[1] != tgt.shape[1]:
        raise XstiltsError(f"source vectors have dimension {src.shape[1]}, target vectors {tgt.shape[1]}")
    if not len(gold):
        raise XstiltsError("word retrieval needs at least one gold pair")
    answers: dict[int, set[int]] = {}
    for i, j in gold:
        if not (0 <= i < len(src) and 0 <= j < len(tgt)):
            raise XstiltsError(f"gold pair ({i}, {j}) is outside {len(src)} source x {len(tgt)} target words")
        answers.setdefault(int(i), set()).add(int(j))
    n_tgt = len(tgt)
    if setting == "weak":
        pool, query_self, pool_self = tgt, None, None
    else:
        pool, query_self, pool_self = np.concatenate([tgt, src]), n_tgt, -n_tgt
    r_query = neighbourhood_radius(src, pool, k, query_self, block)
    r_pool = neighbourhood_radius(pool, src, k, pool_self, block)
    queries = np.array(sorted(answers), dtype=np.int64)
    predicted = np.empty(len(queries), dtype=np.int64)
    chosen = src[queries]
    for rows in _blocks(len(queries), block):
        sims = chosen[rows] @ pool.T
        scores = 2 * sims.astype(np.float64) - r_query[queries[rows], None] - r_pool[None, :]
        if query_self is not None:
            scores[np.arange(len(sims)), queries[rows] + query_self] = -np.inf
        best = scores.argmax(axis=1)
        predicted[rows] = np.where(best < n_tgt, best, -1)
    correct = np.array(
        [int(p) in answers[int(q)] for q, p in zip(queries, predicted, strict=True)], dtype=bool
    )
    n_correct = int(correct.sum())
    return WordRetrieval(
        setting=setting,
        k=k,
        precision=n_correct / len(queries),
        n_queries=len(queries),
        n_correct=n_correct,
        queries=queries,
        predicted=predicted,
        correct=correct,
    )


# ------------------------------------------------------------------------------------ one-call measure


@dataclass(frozen=True)
class WordSet:
    """The distinct words of each side of some translation pairs (sorted) and the pairs as row indices."""

    source_words: list[str]
    target_words: list[str]
    gold: list[tuple[int, int]]  # (row in source_words, row in target_words), sorted, distinct


def word_set(pairs: Sequence[tuple[str, str]]) -> WordSet:
    """Distinct source and target words (sorted) and gold (source row, target row) pairs from word pairs.

    Words are used as given (no case folding); a word with several translations has one row and several
    gold pairs. Duplicate pairs count once.
    """
    pairs = list(pairs)
    if not pairs:
        raise XstiltsError("word pairs are empty: nothing to measure")
    for pair in pairs:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(w, str) and w.strip() for w in pair)
        ):
            raise XstiltsError(f"a word pair must be two non-empty strings, got {pair!r}")
    source_words = sorted({s for s, _ in pairs})
    target_words = sorted({t for _, t in pairs})
    src_row = {w: i for i, w in enumerate(source_words)}
    tgt_row = {w: i for i, w in enumerate(target_words)}
    gold = sorted({(src_row[s], tgt_row[t]) for s, t in pairs})
    return WordSet(source_words=source_words, target_words=target_words, gold=gold)


def measure_words(
    encoder,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    layers: Sequence[int],
    *,
    k: int = 10,
    batch_size: int = 128,
) -> dict[tuple[str, int], float]:
    """CSLS word translation precision@1 per (setting, layer), settings "weak" and "strong".

    The vectors of all `layers` come from one `word_vectors` call per side. Layer keys are hidden-state
    indices made non-negative (-1 becomes num_hidden_layers), each once. A `SmallSampleWarning` is issued
    when there are fewer than 100 distinct source words (the queries).
    """
    words = word_set(pairs)
    n_states = encoder.config.num_hidden_layers + 1
    layers = _checked_layers(layers, n_states)
    layers = list(dict.fromkeys(layer % n_states for layer in layers))
    warn_if_small(len({i for i, _ in words.gold}), what="word pairs (distinct source words, the queries)")
    src = word_vectors(encoder, tokenizer, words.source_words, layers, batch_size=batch_size)
    tgt = word_vectors(encoder, tokenizer, words.target_words, layers, batch_size=batch_size)
    return {
        (setting, layer): word_retrieval(src[row], tgt[row], words.gold, setting=setting, k=k).precision
        for setting in SETTINGS
        for row, layer in enumerate(layers)
    }
