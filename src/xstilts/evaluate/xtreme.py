"""The XTREME and XTREME-R submission layout: write, read and score `<task>/test-<lang>.<ext>` folders.

The layout and scoring follow google-research/xtreme's `evaluate.py` (`--xtreme_version xtreme` or
`xtreme-r`; here `suite`, whose tables are in `suites.py`):

- **Files.** One folder per task (its XTREME name: xnli, pawsx, udpos, panx, xquad, mlqa, tydiqa,
  bucc2018, tatoeba; XTREME-R adds xcopa, mewslix, lareqa), one file per language: `test-<lang>.json` for
  the QA and ranking tasks, `test-<lang>.jsonl` for xcopa and `test-<lang>.tsv` for the rest (evaluate.py's
  `get_suffix`). The gold folder has the same layout.
- **Formats.** xnli, pawsx: one label per line. tatoeba: one line per English sentence, in order,
  holding the index of the xx sentence retrieved for it (XTREME's en->xx submission layout; compared as
  text, like a label). bucc2018: one mined pair per line, `<source id>\\t<target id>`, compared as sets.
  udpos, panx: one tag per line, a blank line closing each sentence. xquad, mlqa, tydiqa: predictions
  are a JSON object {question id: answer text}; gold is a SQuAD-format JSON file
  ({"data": [{"paragraphs": [{"qas": [{"id", "answers": [{"text"}]}]}]}]}). xcopa ("choices", evaluate.py's
  `read_xcopa`): one JSON object per line with the chosen answer's index as "label" (the gold files are
  XCOPA's own test files, whose other fields are ignored). mewslix, lareqa ("rankings"): a JSON object
  {query id: [candidate ids, best first]}; gold the same with the relevant ids (Mewsli-X's official gold
  is a dict of singleton lists).
- **Metrics.** Accuracy for xnli, pawsx, tatoeba and xcopa; seqeval (0.0.12) chunk F1, precision and
  recall for udpos and panx; SQuAD v1.1 F1/EM for xquad and tydiqa; MLQA F1/EM (with the language) for
  mlqa; F1, precision and recall over pairs for bucc2018; mAP@20 for mewslix and lareqa. They come from
  each task's registry spec (`metric`, the headline, then `extra_metrics`), or from the suite table for a
  task the registry lacks; Tatoeba's `retrieval_accuracy` (defined on vectors) becomes plain accuracy on
  the written indices.
- **Languages.** Each task is scored over the suite's fixed language list for it, as `evaluate.py` does
  with `XTREME_TASK2LANGS` / `XTREME_R_TASK2LANGS` (`suites.py`, from `tasks/languages.py`). Gold files
  for other languages are ignored and reported in the notes. A listed language without a gold or a
  prediction file is an error naming them (XTREME's script raises `FileNotFoundError`), unless `partial`,
  which scores the listed languages that have both and marks the result partial. A task is scored when
  the gold folder holds files for it; a task absent from the gold folder is left out, as XTREME leaves out
  a task missing from either folder (here a task with gold but no predictions is an error, not a silent
  omission). A task of the other suite with both gold and prediction files is an error that names the
  suite to pass; with files on one side only it is ignored with a note.
- **Aggregation.** Each metric is averaged over the task's scored languages. A task's score is
  evaluate.py's `avg_metric`: for the QA tasks (the suite's "qa" group) the mean of average F1 and average
  EM, else average F1 if the task has one, else average accuracy, else average mAP@20. Each group whose
  tasks are all present is the mean of their scores (XTREME-R's xcopa is in two groups, classification
  and multi_choice, as there), and the suite's score is the mean of all its task scores (XTREME: 9,
  XTREME-R: 10; not of the group scores), reported only when every task is present.

Where XTREME's script asserts or crashes, this module raises `XstiltsError` naming the file (and the line
for text files): missing files of listed languages, a malformed line, a question without a prediction.
Scores are fractions in [0, 1]; the printed tables show percentages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xstilts.distributed import main_process_writes
from xstilts.errors import XstiltsError
from xstilts.evaluate.metrics import get_metric
from xstilts.evaluate.suites import XTREME, Suite, get_suite, suite_task, suites_with
from xstilts.io import atomic_file
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec

# XTREME's tables, kept under their old names
GROUPS: dict[str, tuple[str, ...]] = XTREME.groups
TASK_ORDER = XTREME.task_names
QA_TASKS = XTREME.qa_tasks
# metrics defined on model outputs that the files replace with what the written predictions support
FILE_METRICS = {"retrieval_accuracy": "accuracy"}
# evaluate.py's avg_metric: the first of these averages the task has (QA tasks excepted, see TaskScores)
SCORE_PRECEDENCE = ("f1", "accuracy", "map@20")
EXTENSIONS = {"answers": "json", "rankings": "json", "choices": "jsonl"}  # others: tsv


_OFFICIAL_SUFFIXES = {"f1": "f1", "em": "exact_match", "precision": "precision", "recall": "recall"}


def official_name(metric: str) -> str:
    """evaluate.py's key for a metric's value: f1, precision, recall, exact_match, accuracy or map@20."""
    if metric == "map_at_20":
        return "map@20"
    return _OFFICIAL_SUFFIXES.get(metric.rsplit("_", 1)[-1], metric)


def _registry_spec(task: str) -> TaskSpec | None:
    """The registry's TaskSpec whose XTREME folder name is `task`, or None when the registry lacks it."""
    from xstilts.tasks.registry import TASK_TABLE

    return next((spec for spec in TASK_TABLE if spec.xtreme_name == task), None)


def xtreme_specs(suite: str = "xtreme") -> dict[str, TaskSpec]:
    """The registry's specs of a suite's tasks keyed by folder name, with the suite's language lists (the
    registry lists the union of XTREME's and XTREME-R's languages for udpos, panx, tatoeba and xquad)."""
    table = get_suite(suite)
    specs = {}
    for task in table.tasks:
        spec = _registry_spec(task.name)
        if spec is not None:
            specs[task.name] = replace(spec, languages=task.languages)
    return specs


def _spec(task: str) -> TaskSpec | None:
    """The task's registry spec (None for a suite task the registry lacks); unknown folders raise."""
    suite_task(task)
    return _registry_spec(task)


def file_format(task: str) -> str:
    """The task's file format: "labels", "tags", "answers", "pairs", "choices" or "rankings"."""
    row, spec = suite_task(task), _registry_spec(task)
    if row.file_format is not None:
        return row.file_format
    return get_kind(spec.kind).prediction_format


def extension(task: str) -> str:
    return EXTENSIONS.get(file_format(task), "tsv")


def prediction_path(task_dir: Path, lang: str, task: str | None = None) -> Path:
    task_dir = Path(task_dir)
    return task_dir / f"test-{lang}.{extension(task or task_dir.name)}"


def task_metrics(task: str) -> tuple[str, ...]:
    """The metric names a task is scored with from files: headline first."""
    row, spec = suite_task(task), _registry_spec(task)
    names = row.metrics or (spec.metric, *spec.extra_metrics)
    return tuple(FILE_METRICS.get(name, name) for name in names)


# ------------------------------------------------------------------------------------------------ write


def _check_field(value: str, path: Path, what: str) -> str:
    """A label, tag or id must be one whitespace-free token: that is what the readers accept back."""
    if len(value.split()) != 1 or value != value.strip():
        raise XstiltsError(f"{path}: cannot write {what} {value!r}: it must be one token without whitespace")
    return value


def _name(value, labels: Sequence[str], path: Path, what: str) -> str:
    if isinstance(value, str):
        return _check_field(value, path, what)
    if not labels:
        return _check_field(str(int(value)), path, what)
    if not 0 <= int(value) < len(labels):
        raise XstiltsError(f"{path}: {what} id {value} is outside the task's {len(labels)} labels")
    return _check_field(labels[int(value)], path, what)


def _choice(value, labels: Sequence[str], path: Path) -> int:
    """A chosen answer as its index: an int (numpy ints too) or one of the task's label names."""
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise XstiltsError(f"{path}: a choice must be an answer index, got {value!r}")
    index = int(value)
    if not 0 <= index < (len(labels) or index + 1):
        raise XstiltsError(f"{path}: choice {index} is outside the task's {len(labels)} answers")
    return index


def _candidate(value, path: Path, query: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise XstiltsError(
            f"{path}: query {query!r}: a candidate id must be a non-empty string, got {value!r}"
        )
    return str(value)


def _rankings(predictions, path: Path) -> dict[str, list[str]]:
    if not isinstance(predictions, Mapping):
        raise XstiltsError(f"{path}: rankings must map query id -> candidate ids, best first")
    out = {}
    for query, ranked in predictions.items():
        if isinstance(ranked, str | bytes | Mapping) or not isinstance(ranked, Iterable):
            raise XstiltsError(
                f"{path}: query {query!r}: the candidates must be a list of ids, got {ranked!r}"
            )
        out[str(query)] = [_candidate(value, path, str(query)) for value in ranked]
    return out


@main_process_writes  # under `accelerate launch` every process holds the same predictions: one writes
def write_predictions(task_dir: Path, lang: str, predictions, task: str | None = None) -> Path:
    """Write one language's predictions into `task_dir` in the task's XTREME format (atomically).

    `task` defaults to the folder's name. Accepted predictions, by format:
    labels (xnli, pawsx, tatoeba): a sequence of labels; ints are looked up in the spec's labels when it
    has some (xnli, pawsx) and written as numbers otherwise (tatoeba's retrieved indices).
    tags (udpos, panx): a sequence of sentences, each a sequence of tags (names, or ids into the labels).
    answers (xquad, mlqa, tydiqa): a mapping question id -> answer text.
    pairs (bucc2018): an iterable of (source id, target id); written sorted.
    choices (xcopa): a sequence of chosen answers, indices (or the spec's label names), one
    {"label": index} line each.
    rankings (mewslix, lareqa): a mapping query id -> candidate ids, best first.
    """
    task_dir = Path(task_dir)
    task = task or task_dir.name
    spec, fmt, path = _spec(task), file_format(task), prediction_path(task_dir, lang, task)
    if fmt == "answers":
        if not isinstance(predictions, Mapping):
            raise XstiltsError(f"{path}: QA predictions must map question id -> answer text")
        for qid, answer in predictions.items():
            if not isinstance(answer, str):
                raise XstiltsError(f"{path}: the answer to question {qid!r} is not a string: {answer!r}")
        text = json.dumps(
            {str(k): v for k, v in predictions.items()}, ensure_ascii=False, indent=1, sort_keys=True
        )
        lines = [text]
    elif fmt == "labels":
        lines = [_name(label, spec.labels, path, "label") for label in predictions]
    elif fmt == "tags":
        lines = []
        for sentence in predictions:
            lines.extend(_name(tag, spec.labels, path, "tag") for tag in sentence)
            lines.append("")  # every sentence, the last one included, is closed by a blank line
    elif fmt == "choices":
        labels = spec.labels if spec is not None else ()
        lines = [json.dumps({"label": _choice(value, labels, path)}) for value in predictions]
    elif fmt == "rankings":
        lines = [json.dumps(_rankings(predictions, path), ensure_ascii=False, sort_keys=True)]
    else:
        pairs = set()
        for pair in predictions:
            if isinstance(pair, str) or len(pair) != 2:
                raise XstiltsError(f"{path}: a BUCC prediction must be (source id, target id), got {pair!r}")
            pairs.add((_check_field(str(pair[0]), path, "id"), _check_field(str(pair[1]), path, "id")))
        lines = [f"{source}\t{target}" for source, target in sorted(pairs)]
    with atomic_file(path) as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path


# ------------------------------------------------------------------------------------------------- read


def _lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file, stripped like XTREME's readers; a bad byte is named by line."""
    if not path.is_file():
        raise XstiltsError(f"missing file {path}")
    out = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            out.append(raw.decode("utf-8").strip())
        except UnicodeDecodeError as err:
            raise XstiltsError(f"{path}:{number}: not UTF-8 ({err.reason})") from None
    while out and not out[-1]:  # blank lines at the end are padding, not empty records
        out.pop()
    return out


def _read_labels(path: Path) -> list[str]:
    labels = _lines(path)
    for number, label in enumerate(labels, start=1):
        if not label or len(label.split()) != 1:
            raise XstiltsError(f"{path}:{number}: expected one label on the line, got {label!r}")
    return labels


def _read_tags(path: Path) -> list[list[str]]:
    """XTREME's read_tag: a blank line closes the current sentence; the last one may lack it."""
    if not path.is_file():
        raise XstiltsError(f"missing file {path}")
    sentences, current = [], []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise XstiltsError(f"{path}:{number}: not UTF-8 ({err.reason})") from None
        if not line:
            sentences.append(current)
            current = []
        elif len(line.split()) != 1:
            raise XstiltsError(f"{path}:{number}: expected one tag on the line, got {line!r}")
        else:
            current.append(line)
    if current:
        sentences.append(current)
    return sentences


def _read_pairs(path: Path) -> set[tuple[str, str]]:
    pairs = set()
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not all(fields) or any(len(f.split()) != 1 for f in fields):
            raise XstiltsError(f"{path}:{number}: expected '<source id><TAB><target id>', got {line!r}")
        pairs.add((fields[0], fields[1]))
    return pairs


def _load_json(path: Path):
    if not path.is_file():
        raise XstiltsError(f"missing file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise XstiltsError(f"{path}: not UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise XstiltsError(f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno})") from None


def _read_answers(path: Path) -> dict[str, str]:
    data = _load_json(path)
    if not isinstance(data, dict) or "data" in data:
        raise XstiltsError(f"{path}: QA predictions must be a JSON object {{question id: answer text}}")
    for qid, answer in data.items():
        if not isinstance(answer, str):
            raise XstiltsError(f"{path}: the answer to question {qid!r} is not a string: {answer!r}")
    return data


def _read_gold_answers(path: Path) -> dict[str, list[str]]:
    """Gold QA answers from a SQuAD-format file, or from a plain {id: [answers]} object."""
    data = _load_json(path)
    if isinstance(data, dict) and "data" in data:
        gold = {}
        try:
            for article in data["data"]:
                for paragraph in article["paragraphs"]:
                    for qa in paragraph["qas"]:
                        if qa["id"] in gold:
                            raise XstiltsError(f"{path}: question {qa['id']!r} appears twice")
                        gold[qa["id"]] = [answer["text"] for answer in qa["answers"]]
        except (KeyError, TypeError) as err:
            raise XstiltsError(f"{path}: not a SQuAD-format file (missing or bad field {err})") from None
        return gold
    if isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in data.values()
    ):
        return data
    raise XstiltsError(f"{path}: gold answers must be SQuAD-format JSON or {{question id: [answer texts]}}")


def _read_choices(path: Path) -> list[int]:
    """evaluate.py's read_xcopa: the "label" of each JSON line (other fields, as XCOPA's, are ignored)."""
    choices = []
    for number, line in enumerate(_lines(path), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise XstiltsError(f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno})") from None
        label = record.get("label") if isinstance(record, dict) else None
        if isinstance(label, bool) or not isinstance(label, int):
            raise XstiltsError(
                f'{path}:{number}: expected a JSON object with an integer "label", got {line!r}'
            )
        choices.append(label)
    return choices


def _read_rankings(path: Path, gold: bool = False) -> dict[str, list[str]]:
    """{query id: [candidate ids]}; gold lists hold the relevant ids and may not be empty."""
    data = _load_json(path)
    what = "relevant candidate ids" if gold else "candidate ids, best first"
    if not isinstance(data, dict):
        raise XstiltsError(f"{path}: expected a JSON object {{query id: [{what}]}}")
    out = {}
    for query, ranked in data.items():
        if not isinstance(ranked, list) or any(
            isinstance(c, bool) or not isinstance(c, str | int) for c in ranked
        ):
            raise XstiltsError(f"{path}: query {query!r}: expected a list of {what}, got {ranked!r}")
        if gold and not ranked:
            raise XstiltsError(f"{path}: query {query!r} has no relevant candidate")
        out[query] = [str(c) for c in ranked]
    return out


_READERS = {
    "labels": _read_labels,
    "tags": _read_tags,
    "answers": _read_answers,
    "pairs": _read_pairs,
    "choices": _read_choices,
    "rankings": _read_rankings,
}


def read_predictions(task_dir: Path, lang: str, task: str | None = None):
    """One language's predictions from `task_dir`, in the form the task's metrics take."""
    task_dir = Path(task_dir)
    task = task or task_dir.name
    return _READERS[file_format(task)](prediction_path(task_dir, lang, task))


def read_gold(task_dir: Path, lang: str, task: str | None = None):
    """One language's gold file; the same formats as predictions except SQuAD-format JSON for QA (and
    non-empty lists of relevant ids for rankings)."""
    task_dir = Path(task_dir)
    task = task or task_dir.name
    path = prediction_path(task_dir, lang, task)
    if file_format(task) == "answers":
        return _read_gold_answers(path)
    if file_format(task) == "rankings":
        return _read_rankings(path, gold=True)
    return read_predictions(task_dir, lang, task)


# ------------------------------------------------------------------------------------------------ score


@dataclass
class TaskScores:
    """One task's per-language scores (fractions) for each of its metrics."""

    task: str
    metrics: tuple[str, ...]
    expected_languages: tuple[str, ...]  # the suite's test languages of the task
    languages: dict[str, dict[str, float]] = field(default_factory=dict)  # lang -> metric -> value
    qa: bool = False  # scored as (average F1 + average EM) / 2 (the suite's "qa" group)

    @property
    def average(self) -> dict[str, float]:
        """Each metric averaged over the scored languages (XTREME's avg_<metric>)."""
        return {m: sum(v[m] for v in self.languages.values()) / len(self.languages) for m in self.metrics}

    @property
    def scored_by(self) -> tuple[str, ...]:
        """The metrics of evaluate.py's avg_metric: F1 and EM for QA, else the first of F1, accuracy and
        mAP@20 that the task has."""
        official = {official_name(m): m for m in reversed(self.metrics)}  # the first metric of a name wins
        if self.qa:
            wanted: tuple[str, ...] = ("f1", "exact_match")
        else:
            wanted = tuple(name for name in SCORE_PRECEDENCE if name in official)[:1]
        if not wanted or not all(name in official for name in wanted):
            raise XstiltsError(f"{self.task}: no metric to score it by among {', '.join(self.metrics)}")
        return tuple(official[name] for name in wanted)

    @property
    def score(self) -> float:
        """XTREME's avg_metric: the mean of the `scored_by` averages."""
        average = self.average
        return sum(average[m] for m in self.scored_by) / len(self.scored_by)

    @property
    def missing_languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in self.expected_languages if lang not in self.languages)


@dataclass
class XtremeScores:
    tasks: dict[str, TaskScores]  # in the suite's task order
    partial: bool = False  # some listed languages had no gold or no prediction file and were left out
    notes: list[str] = field(default_factory=list)
    suite: Suite = XTREME

    @property
    def groups(self) -> dict[str, float]:
        """Score of each group whose tasks are all present: the mean of its task scores."""
        return {
            group: sum(self.tasks[t].score for t in tasks) / len(tasks)
            for group, tasks in self.suite.groups.items()
            if all(t in self.tasks for t in tasks)
        }

    @property
    def overall(self) -> float | None:
        """The suite's score, the mean of all its task scores; None unless every task is present."""
        if set(self.tasks) != set(self.suite.task_names):
            return None
        return sum(task.score for task in self.tasks.values()) / len(self.suite.tasks)

    @property
    def complete(self) -> bool:
        """Every task of the suite, each over every language the suite lists for it."""
        return self.overall is not None and not any(t.missing_languages for t in self.tasks.values())

    def to_json(self) -> dict:
        return {
            "scale": "fraction",
            "suite": self.suite.name,
            "tasks": {
                name: {
                    "metrics": list(task.metrics),
                    "languages": task.languages,
                    "average": task.average,
                    "score": task.score,
                    "missing_languages": list(task.missing_languages),
                }
                for name, task in self.tasks.items()
            },
            "groups": self.groups,
            self.suite.name: self.overall,  # "xtreme" or "xtreme-r"
            "complete": self.complete,
            "partial": self.partial,
            "notes": self.notes,
        }


def _trim_empty_tail(sentences: list[list[str]]) -> list[list[str]]:
    end = len(sentences)
    while end and not sentences[end - 1]:
        end -= 1
    return sentences[:end]


def unknown_labels_note(task: str, predictions, gold, pred_path: Path) -> str | None:
    """A note counting predicted labels (or tags) that are neither the task's nor in the gold file.

    XTREME's evaluate.py scores them as wrong without a word; a typo in a label then only shows as a low
    score, so they are counted and named here (and still scored as wrong, to give the official number)."""
    spec = _spec(task)
    if file_format(task) not in ("labels", "tags") or spec is None or not spec.labels:
        return None
    flat = (lambda rows: [t for row in rows for t in row]) if file_format(task) == "tags" else list
    known = set(spec.labels) | set(flat(gold))
    unknown = [label for label in flat(predictions) if label not in known]
    if not unknown:
        return None
    shown = ", ".join(repr(label) for label in sorted(set(unknown))[:5])
    return (
        f"{pred_path}: {len(unknown)} prediction(s) with a label the task does not have ({shown}); scored "
        f"as wrong, as XTREME's evaluate.py does; valid labels: {', '.join(spec.labels)}"
    )


def score_file(
    task: str, pred_path: Path, gold_path: Path, lang: str, notes: list[str] | None = None
) -> dict[str, float]:
    """Every metric of `task` for one language's prediction file against its gold file; `notes` gets the
    count of unknown labels, if any."""
    pred_dir, gold_dir = pred_path.parent, gold_path.parent
    predictions, gold = read_predictions(pred_dir, lang, task), read_gold(gold_dir, lang, task)
    if file_format(task) == "tags":
        predictions, gold = _trim_empty_tail(predictions), _trim_empty_tail(gold)
    note = unknown_labels_note(task, predictions, gold, pred_path)
    if note is not None and notes is not None:
        notes.append(note)
    scores = {}
    for name in task_metrics(task):
        try:
            scores[name] = get_metric(name)(predictions, gold, language=lang)
        except (XstiltsError, ValueError) as err:
            raise XstiltsError(f"{pred_path} against {gold_path}: {err}") from None
    return scores


def _languages_with_files(folder: Path, task: str) -> list[str]:
    """The languages of the `test-<lang>.<ext>` files in one task folder (none if it does not exist)."""
    ext = extension(task)
    return sorted(path.name[len("test-") : -len(ext) - 1] for path in folder.glob(f"test-*.{ext}"))


def _listed(langs: Sequence[str]) -> str:
    return f"{len(langs)} language{'s' if len(langs) != 1 else ''} ({', '.join(langs)})"


def _other_suite_tasks(pred_dir: Path, gold_dir: Path, suite: Suite, notes: list[str]) -> list[str]:
    """The tasks of another suite that have gold *and* prediction files (they were meant to be scored:
    the suite is wrong), as "<tasks> of <suite> (--suite <name>)"; a note for those with files on one
    side only (a gold folder shared by both suites)."""
    misplaced: dict[str, list[str]] = {}  # the suites holding them -> tasks
    for task_dir in sorted(p for p in gold_dir.iterdir() if p.is_dir()):
        task, others = task_dir.name, suites_with(task_dir.name)
        if task in suite.task_names or not others or not _languages_with_files(task_dir, task):
            continue
        holder = " and ".join(f"{other.title} (--suite {other.name})" for other in others)
        if _languages_with_files(pred_dir / task, task):
            misplaced.setdefault(holder, []).append(task)
        else:
            notes.append(f"ignored gold folder {task!r}: a task of {holder}, not of {suite.title}")
    return [f"{', '.join(tasks)} of {holder}" for holder, tasks in misplaced.items()]


def score_submission(
    pred_dir: Path, gold_dir: Path, partial: bool = False, suite: str | Suite = "xtreme"
) -> XtremeScores:
    """Score each task of `suite` that has gold files over its fixed language list (see the module
    docstring).

    The languages of a task are the suite's (`suites.py`), which equal `XTREME_TASK2LANGS` or
    `XTREME_R_TASK2LANGS` in `evaluate.py`; gold files of other languages are ignored with a note. A listed
    language without a gold or a prediction file is an error naming every one of them, unless `partial`,
    which scores the listed languages that have both files (task averages then cover fewer languages;
    `XtremeScores.partial` is set and the notes name what was left out). A task of the other suite with
    gold and prediction files is an error naming the suite to pass.
    """
    table = suite if isinstance(suite, Suite) else get_suite(suite)
    title = table.title
    pred_dir, gold_dir = Path(pred_dir), Path(gold_dir)
    for folder, what in ((pred_dir, "prediction"), (gold_dir, "gold")):
        if not folder.is_dir():
            raise XstiltsError(f"{what} folder {folder} does not exist")
    notes: list[str] = []
    misplaced = _other_suite_tasks(pred_dir, gold_dir, table, notes)
    if misplaced:
        raise XstiltsError(
            f"scoring {title} (--suite {table.name}), but {gold_dir} and {pred_dir} hold tasks of another "
            f"suite: {'; '.join(misplaced)}. Pass that --suite, or move those task folders out of the "
            f"prediction folder to score the {title} tasks alone"
        )
    wanted: dict[str, tuple[str, ...]] = {}  # task -> its languages in the suite
    for task_dir in sorted(p for p in gold_dir.iterdir() if p.is_dir()):
        task = task_dir.name
        if task not in table.task_names:
            if not suites_with(task):
                notes.append(f"ignored gold folder {task!r}: not an {title} task")
            continue
        present = _languages_with_files(task_dir, task)
        if not present:
            continue
        wanted[task] = table.languages(task)
        extra = [lang for lang in present if lang not in wanted[task]]
        if extra:
            notes.append(
                f"{task}: ignored the gold files of {_listed(extra)}: not among the task's "
                f"{len(wanted[task])} {title} languages"
            )
    if not wanted:
        raise XstiltsError(f"no {title} gold files (<task>/test-<lang>.tsv|json|jsonl) under {gold_dir}")

    problems, scored = [], {}  # scored: task -> the listed languages with both files
    for task in (t for t in table.task_names if t in wanted):
        gold_langs = set(_languages_with_files(gold_dir / task, task))
        pred_langs = set(_languages_with_files(pred_dir / task, task))
        no_gold = [lang for lang in wanted[task] if lang not in gold_langs]
        no_pred = [lang for lang in wanted[task] if lang in gold_langs and lang not in pred_langs]
        if no_gold:
            problems.append(f"{task}: no gold file for {_listed(no_gold)} of its {len(wanted[task])}")
        if no_pred:
            problems.append(f"{task}: no prediction file for {_listed(no_pred)}")
        scored[task] = [lang for lang in wanted[task] if lang in gold_langs and lang in pred_langs]
        notes.extend(  # unlisted languages with gold files are in the note about those
            f"ignored {task}/{prediction_path(pred_dir / task, lang).name}: not among the task's languages"
            for lang in sorted(pred_langs - set(wanted[task]) - gold_langs)
        )
    if problems and not partial:
        raise XstiltsError(
            f"every language {title} lists for a task needs a gold file under {gold_dir} and a prediction "
            f"file under {pred_dir}; missing: {'; '.join(problems)} "
            "(pass --partial to score only the languages that have both)"
        )
    notes.extend(f"not scored: {problem}" for problem in problems)
    for task_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir() and suites_with(p.name)):
        if task_dir.name not in wanted and _languages_with_files(task_dir, task_dir.name):
            notes.append(f"ignored predictions for {task_dir.name}: no gold files for the task")

    tasks = {}
    for task, langs in scored.items():
        scores = TaskScores(task, task_metrics(task), wanted[task], qa=task in table.qa_tasks)
        for lang in langs:
            pred_path, gold_path = (
                prediction_path(pred_dir / task, lang),
                prediction_path(gold_dir / task, lang),
            )
            scores.languages[lang] = score_file(task, pred_path, gold_path, lang, notes)
        if scores.languages:
            tasks[task] = scores
    if not tasks:
        raise XstiltsError(
            f"no language of any task has both a gold and a prediction file ({'; '.join(problems)})"
        )
    return XtremeScores(tasks, partial=bool(problems), notes=notes, suite=table)


def write_scores_json(scores: XtremeScores, path: Path) -> Path:
    with atomic_file(Path(path)) as handle:
        json.dump(scores.to_json(), handle, indent=2, sort_keys=False)
        handle.write("\n")
    return Path(path)


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def print_scores(scores: XtremeScores, console: Console) -> None:
    """A table per task (languages x metrics, in percent); the summary with the suite's groups and score."""
    suite, title = scores.suite, scores.suite.title
    for name, task in scores.tasks.items():
        table = Table(title=f"{name} (percent)")
        table.add_column("language")
        for metric in task.metrics:
            table.add_column(metric, justify="right")
        for lang, values in task.languages.items():
            table.add_row(lang, *(_pct(values[m]) for m in task.metrics))
        table.add_row("[bold]avg[/bold]", *(f"[bold]{_pct(task.average[m])}[/bold]" for m in task.metrics))
        console.print(table)
    summary = Table(title=f"{title} (percent)")
    for column in ("task", "group", "languages", "scored by", "score"):
        summary.add_column(column, justify="right" if column == "score" else "left")
    for name, task in scores.tasks.items():
        covered = f"{len(task.languages)}/{len(task.expected_languages)}"
        scored_by = "(F1+EM)/2" if task.qa else task.scored_by[0]
        summary.add_row(name, suite.group_of(name) or "-", covered, scored_by, _pct(task.score))
    for group, value in scores.groups.items():
        summary.add_row(f"[bold]{group}[/bold]", "", "", "mean of tasks", f"[bold]{_pct(value)}[/bold]")
    overall = scores.overall
    if overall is not None:
        label = f"{title} score" if scores.complete else f"{title} score*"
        summary.add_row(
            f"[bold]{label}[/bold]",
            "",
            "",
            f"mean of {len(suite.tasks)} tasks",
            f"[bold]{_pct(overall)}[/bold]",
        )
    console.print(summary)
    if overall is None:
        absent = [t for t in suite.task_names if t not in scores.tasks]
        console.print(f"no {title} score: tasks without scores: {', '.join(absent)}")
    elif not scores.complete:
        console.print("* not over every language of every task (see the languages column)")
    if scores.partial:
        console.print("partial: some listed languages had no gold or prediction file and were not scored")
    for note in scores.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
