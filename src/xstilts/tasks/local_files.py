"""Readers for the original release formats of the benchmark's data files.

Each reader takes a path and yields `(position, record)`: `position` is the 1-based line number where the
record starts for line-based formats, and the 1-based record ordinal for whole-file formats (`squad_json`,
`bucc`; see `WHOLE_FILE_FORMATS`). Records are plain dicts that the adapters in `adapters.py` turn into
examples. Whatever is malformed raises an XstiltsError that names `file:line` and what is wrong.

Formats (the `local_format` of a DataRef):

- `jsonl`: one JSON object per line (MNLI, SNLI, ANLI, HellaSwag, CosmosQA, CommonsenseQA releases).
- `jsonl_labels`: AI2's leaderboard releases (Social IQa's socialiqa-train-dev.zip): `<split>.jsonl` without
  labels and `<split>-labels.lst` beside it, line i the label of record i, which the reader puts in "label".
- `tsv:<col>,<col>,...`: headerless tab-separated rows with the named columns (XTREME's processed XNLI and
  PAWS-X files: `sentence1, sentence2, label`), csv-quoted as Python's csv writer leaves them.
- `tsv_header`: tab-separated with a header row and no quoting (GLUE).
- `conll`: one `word<TAB>tag` per line, a blank line between sentences -> {"tokens", "tags"} (tag strings).
- `conllu`: CoNLL-U; comments, multiword token ranges (`1-2`) and empty nodes (`1.1`) skipped; FORM and UPOS.
- `squad_json`: SQuAD JSON (data -> paragraphs -> qas), flattened to the hub's records:
  {"id", "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}}. A paragraph's
  `sentence_breaks` ([start, end] character spans: XQuAD-R, github google-research-datasets/lareqa) are
  checked and passed on with each of its questions.
- `bucc`: the BUCC 2018 release; the path is a prefix `<dir>/<xx>-en.<split>` naming `<prefix>.<xx>`,
  `<prefix>.en` (`id<TAB>sentence` lines) and `<prefix>.gold` (`xx_id<TAB>en_id`). One record:
  {"source": {id: text}, "target": {id: text}, "gold": [[xx_id, en_id], ...]}.
- `tatoeba`: LASER's release; the path is a prefix `<dir>/tatoeba.<iso3>-eng` naming `<prefix>.<iso3>` and
  `<prefix>.eng`, line i of one the translation of line i of the other. Records use the hub's field names:
  {"source_sentence", "target_sentence", "source_lang", "target_lang"}.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from xstilts.errors import XstiltsError, unknown_name

Reader = Callable[[Path], Iterator[tuple[int, dict]]]

WHOLE_FILE_FORMATS = frozenset({"squad_json", "bucc"})

# XTREME's download script (utils_preprocess.py) writes test files without their labels or answers.
_XTREME_TEST_HINT = (
    "XTREME's download script strips the labels from test files; use the original release or the hub"
)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # SQuAD-like contexts can exceed csv's 128 KiB default


def _error(path: Path, line: int | None, what: str) -> XstiltsError:
    where = f"{path}:{line}" if line is not None else str(path)
    return XstiltsError(f"{where}: {what}")


def _open(path: Path):
    try:
        return open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise XstiltsError(f"data file not found: {path}") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with _open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise _error(path, number, f"bad JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(record, dict):
                raise _error(path, number, f"expected a JSON object, got {type(record).__name__}")
            yield number, record


def _labels_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}-labels.lst")


def read_jsonl_labels(path: Path) -> Iterator[tuple[int, dict]]:
    """`<split>.jsonl` records with the labels of `<split>-labels.lst`, one per line, in the same order."""
    labels_file = _labels_file(path)
    with _open(labels_file) as f:
        labels = [line.strip() for line in f]
    while labels and not labels[-1]:
        labels.pop()
    count = 0
    for count, (number, record) in enumerate(read_jsonl(path), 1):
        if count > len(labels):
            what = f"no label for record {count}: {labels_file.name} has only {len(labels)}"
            raise _error(path, number, what)
        if not labels[count - 1]:
            raise _error(labels_file, count, "empty label")
        yield number, {**record, "label": labels[count - 1]}
    if count != len(labels):
        raise XstiltsError(f"{labels_file} has {len(labels)} labels but {path} has {count} records")


def read_tsv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Headerless rows with exactly `columns`; quoting as Python's csv module writes it (XTREME's files)."""
    with _open(path) as f:
        reader = csv.reader(f, delimiter="\t")
        start = 1
        for row in reader:
            end = reader.line_num
            if not row or row == [""]:
                start = end + 1
                continue
            if len(row) != len(columns):
                what = f"expected {len(columns)} tab-separated columns ({', '.join(columns)}), got {len(row)}"
                if len(row) == len(columns) - 1 and columns[-1] == "label":
                    what += f" ({_XTREME_TEST_HINT})"
                raise _error(path, start, what)
            yield start, dict(zip(columns, row, strict=True))
            start = end + 1


def read_tsv_header(path: Path) -> Iterator[tuple[int, dict]]:
    """A header row naming the columns, then one unquoted row per line (GLUE's TSV files)."""
    with _open(path) as f:
        header: list[str] | None = None
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                raise _error(
                    path, number, f"expected {len(header)} tab-separated columns ({', '.join(header)}), "
                    f"got {len(fields)}"
                )  # fmt: skip
            yield number, dict(zip(header, fields, strict=True))
        if header is None:
            raise _error(path, None, "empty file (expected a header row)")


def _sentences(path: Path, parse_line, skip_line) -> Iterator[tuple[int, dict]]:
    """Blank-line-separated sentences of one (word, tag) per line; `parse_line(number, line)` returns the
    pair or None for a line that carries no word; `skip_line(line)` marks lines that also end a sentence."""
    with _open(path) as f:
        tokens: list[str] = []
        tags: list[str] = []
        start = 0
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or skip_line(line):
                if tokens:
                    yield start, {"tokens": tokens, "tags": tags}
                tokens, tags = [], []
                continue
            pair = parse_line(number, line)
            if pair is None:
                continue
            if not tokens:
                start = number
            tokens.append(pair[0])
            tags.append(pair[1])
        if tokens:
            yield start, {"tokens": tokens, "tags": tags}


def read_conll(path: Path) -> Iterator[tuple[int, dict]]:
    """`word<TAB>tag` lines, sentences separated by blank lines (and `-DOCSTART-` lines, if any)."""

    def parse(number: int, line: str) -> tuple[str, str]:
        fields = line.split("\t")
        if len(fields) == 1:
            raise _error(path, number, f"missing tag: expected 'word<TAB>tag' ({_XTREME_TEST_HINT})")
        if len(fields) != 2:
            raise _error(path, number, f"expected 2 tab-separated fields (word, tag), got {len(fields)}")
        word, tag = fields
        if not word or not tag.strip():
            raise _error(path, number, "empty word or tag")
        return word, tag.strip()

    return _sentences(path, parse, lambda line: line.startswith("-DOCSTART-"))


def read_conllu(path: Path) -> Iterator[tuple[int, dict]]:
    """Universal Dependencies CoNLL-U: syntactic words (FORM) and their UPOS tags."""

    def parse(number: int, line: str) -> tuple[str, str] | None:
        if line.startswith("#"):
            return None
        fields = line.split("\t")
        if len(fields) != 10:
            raise _error(path, number, f"expected 10 tab-separated CoNLL-U fields, got {len(fields)}")
        token_id = fields[0]
        if "-" in token_id or "." in token_id:  # multiword token range or empty node
            return None
        if not token_id.isdigit():
            raise _error(path, number, f"bad token id {token_id!r}")
        return fields[1], fields[3]

    return _sentences(path, parse, lambda line: False)


def _require(obj, key: str, kind: type | tuple[type, ...], path: Path, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise _error(path, None, f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _error(path, None, f"{where}.{key}: expected {expected}, got {type(value).__name__}")
    return value


def _sentence_breaks(paragraph: dict, context: str, path: Path, where: str) -> list[list[int]] | None:
    """XQuAD-R's per-paragraph [start, end] sentence spans, each inside the context; None when absent."""
    breaks = paragraph.get("sentence_breaks")
    if breaks is None:
        return None
    if not isinstance(breaks, list):
        raise _error(path, None, f"{where}.sentence_breaks: expected list, got {type(breaks).__name__}")
    for i, span in enumerate(breaks):
        ints = isinstance(span, list) and len(span) == 2 and all(type(x) is int for x in span)
        if not ints or not 0 <= span[0] < span[1] <= len(context):
            raise _error(
                path, None, f"{where}.sentence_breaks[{i}]: expected [start, end] inside the "
                f"{len(context)}-character context, got {span!r}"
            )  # fmt: skip
    return breaks


def read_squad_json(path: Path) -> Iterator[tuple[int, dict]]:
    """SQuAD v1.1/v2.0 JSON (also XQuAD, XQuAD-R, MLQA, TyDiQA-GoldP), one flat record per question."""
    with _open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise _error(path, err.lineno, f"bad JSON ({err.msg}, column {err.colno})") from None
    articles = _require(data, "data", list, path, "top level")
    ordinal = 0
    for a, article in enumerate(articles):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(_require(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _require(paragraph, "context", str, path, where)
            breaks = _sentence_breaks(paragraph, context, path, where)
            for q, qa in enumerate(_require(paragraph, "qas", list, path, where)):
                qa_where = f"{where}.qas[{q}]"
                answers = _require(qa, "answers", list, path, qa_where)
                texts, starts = [], []
                for i, answer in enumerate(answers):
                    texts.append(_require(answer, "text", str, path, f"{qa_where}.answers[{i}]"))
                    starts.append(_require(answer, "answer_start", int, path, f"{qa_where}.answers[{i}]"))
                ordinal += 1
                record = {
                    "id": str(_require(qa, "id", (str, int), path, qa_where)),
                    "title": title,
                    "context": context,
                    "question": _require(qa, "question", str, path, qa_where),
                    "answers": {"text": texts, "answer_start": starts},
                }
                yield ordinal, record if breaks is None else {**record, "sentence_breaks": breaks}


def _bucc_files(prefix: Path) -> tuple[Path, Path, Path]:
    pair = prefix.name.split(".", 1)[0]  # "de-en.test" -> "de-en"
    source, _, target = pair.partition("-")
    if not source or not target:
        raise XstiltsError(f"BUCC path {prefix} does not look like <dir>/<xx>-en.<split>")
    return (
        prefix.with_name(f"{prefix.name}.{source}"),
        prefix.with_name(f"{prefix.name}.{target}"),
        prefix.with_name(f"{prefix.name}.gold"),
    )


def _two_columns(path: Path, expected: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, [first, second]) of each non-blank `first<TAB>second` line of a BUCC file."""
    with _open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise _error(path, number, f"expected '{expected}', got {len(fields)} fields")
            yield number, fields


def _read_id_sentences(path: Path) -> dict[str, str]:
    sentences: dict[str, str] = {}
    for number, (sentence_id, text) in _two_columns(path, "id<TAB>sentence"):
        if sentence_id in sentences:
            raise _error(path, number, f"duplicate sentence id {sentence_id!r}")
        sentences[sentence_id] = text
    return sentences


def read_bucc(prefix: Path) -> Iterator[tuple[int, dict]]:
    source_file, target_file, gold_file = _bucc_files(prefix)
    source = _read_id_sentences(source_file)
    target = _read_id_sentences(target_file)
    if not gold_file.exists():
        raise XstiltsError(
            f"BUCC gold file not found: {gold_file} (XTREME's download script deletes the test gold; the "
            "original bucc2018-<xx>-en.training-gold release has it)"
        )
    gold: list[list[str]] = []
    for number, fields in _two_columns(gold_file, "source_id<TAB>target_id"):
        if fields[0] not in source:
            raise _error(gold_file, number, f"source id {fields[0]!r} is not in {source_file.name}")
        if fields[1] not in target:
            raise _error(gold_file, number, f"target id {fields[1]!r} is not in {target_file.name}")
        gold.append(fields)
    yield 1, {"source": source, "target": target, "gold": gold}


def _tatoeba_files(prefix: Path) -> tuple[str, Path, Path]:
    stem = prefix.name  # "tatoeba.deu-eng"
    pair = stem.split(".", 1)[-1]
    iso3, _, english = pair.partition("-")
    if not iso3 or english != "eng":
        raise XstiltsError(f"Tatoeba path {prefix} does not look like <dir>/tatoeba.<iso3>-eng")
    return iso3, prefix.with_name(f"{stem}.{iso3}"), prefix.with_name(f"{stem}.eng")


def read_tatoeba(prefix: Path) -> Iterator[tuple[int, dict]]:
    iso3, source_file, target_file = _tatoeba_files(prefix)
    with _open(source_file) as f:
        sources = [line.rstrip("\r\n") for line in f]
    with _open(target_file) as f:
        targets = [line.rstrip("\r\n") for line in f]
    if len(sources) != len(targets):
        raise XstiltsError(
            f"{source_file} has {len(sources)} lines but {target_file} has {len(targets)}; "
            "line i of one must be the translation of line i of the other"
        )
    for number, (source, target) in enumerate(zip(sources, targets, strict=True), 1):
        if not source.strip() or not target.strip():
            raise _error(source_file if not source.strip() else target_file, number, "empty sentence")
        yield (
            number,
            {
                "source_sentence": source,
                "target_sentence": target,
                "source_lang": iso3,
                "target_lang": "eng",
            },
        )


FORMATS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "jsonl_labels": read_jsonl_labels,
    "tsv_header": read_tsv_header,
    "conll": read_conll,
    "conllu": read_conllu,
    "squad_json": read_squad_json,
    "bucc": read_bucc,
    "tatoeba": read_tatoeba,
}


def get_reader(fmt: str) -> Reader:
    """The reader of a `local_format`; `tsv:<col>,<col>,...` is parametrised by its column names."""
    if fmt.startswith("tsv:"):
        columns = tuple(name.strip() for name in fmt[len("tsv:") :].split(","))
        if not all(columns):
            raise XstiltsError(f"bad local format {fmt!r}: expected tsv:<column>,<column>,...")
        return partial(read_tsv, columns=columns)
    try:
        return FORMATS[fmt]
    except KeyError:
        raise unknown_name("local format", fmt, [*FORMATS, "tsv:<columns>"]) from None


def primary_file(fmt: str, path: Path) -> Path:
    """The file whose presence means the data is there locally (a prefix names several files)."""
    if fmt == "bucc":
        return _bucc_files(path)[0]
    if fmt == "tatoeba":
        return _tatoeba_files(path)[1]
    return path


def files_of(fmt: str, path: Path) -> tuple[Path, ...]:
    """Every file a format reads at `path` (a prefix format names several)."""
    if fmt == "bucc":
        return _bucc_files(path)
    if fmt == "tatoeba":
        return _tatoeba_files(path)[1:]
    if fmt == "jsonl_labels":
        return (path, _labels_file(path))
    return (path,)


def text_problem(path: Path, chunk: int = 1 << 20) -> str | None:
    """What makes `path` unusable as a data file (not UTF-8, with its line; or empty), else None.

    Read in binary chunks with an incremental decoder, so a large training file is checked in seconds."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line, content = 1, False
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                line += block[: max(err.start, 0)].count(b"\n")
                return f"{path}:{line}: not UTF-8 ({err.reason}); save the file as UTF-8"
            line += block.count(b"\n")
            content = content or bool(text.strip())
            if not block:
                break
    return None if content else f"{path}: empty data file (no records); check the download or the path"


def read_records(fmt: str, path: Path) -> Iterator[tuple[int, dict]]:
    """The records of a data file; a byte that is not UTF-8 is an error naming its file and line."""
    try:
        yield from get_reader(fmt)(Path(path))
    except UnicodeDecodeError:
        problems = (text_problem(file) for file in files_of(fmt, Path(path)) if file.is_file())
        raise XstiltsError(next(filter(None, problems), f"{path}: not UTF-8")) from None


def describe_position(fmt: str, path: Path, position: int) -> str:
    """`file:line`, or the record ordinal for whole-file formats."""
    if fmt in WHOLE_FILE_FORMATS:
        return f"{path} (record {position})"
    return f"{path}:{position}"
