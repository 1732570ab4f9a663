"""The benchmark suites the scorer knows, as data: XTREME and XTREME-R.

google-research/xtreme's `evaluate.py` keeps one table per version (`XTREME_TASK2LANGS` and
`XTREME_GROUP2TASK` for "xtreme", `XTREME_R_TASK2LANGS` and `XTREME_R_GROUP2TASK` for "xtreme-r") and picks
them with `--xtreme_version`; `SUITES` is that choice here. A suite lists its tasks (the submission folder
names) with their fixed language lists, and its groups. What a task's files look like and which metrics
score them is the task's, not the suite's: it comes from the task registry (the spec's kind gives the file
format, `metric` then `extra_metrics` the metrics) unless a `SuiteTask` sets them, for a task the registry
does not have (yet).

Deviation from `evaluate.py`: it lists lareqa with no languages (`'lareqa': []`), because LAReQA is scored
by its own script (`scripts/run_eval_lareqa.sh`, `third_party/utils_lareqa.py`); its overall XTREME-R score,
the mean over all ten tasks, can therefore never be computed by it. Here lareqa is scored like the others,
per XQuAD-R language (`languages.LAREQA`: the questions of one language against the answer pool), with
mAP@20 (`metrics.map_at_20`, utils_lareqa's AP@k), and it counts among the ten tasks of the overall score.
Its groups stay evaluate.py's, which put lareqa in none (retrieval is tatoeba and mewslix).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xstilts.errors import XstiltsError, unknown_name
from xstilts.tasks import languages as L


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: its folder name and language list; `file_format` and `metrics` are set only
    for a task the registry lacks (otherwise they come from its TaskSpec)."""

    name: str
    languages: tuple[str, ...]
    file_format: str | None = None
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """A benchmark version: its tasks in display order, its groups, and the source it follows."""

    name: str  # what `--suite` takes (evaluate.py's `--xtreme_version`)
    title: str  # how tables and messages name it
    tasks: tuple[SuiteTask, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    @property
    def qa_tasks(self) -> tuple[str, ...]:
        """The tasks scored as (average F1 + average EM) / 2: evaluate.py's `group2task['qa']`."""
        return self.groups.get("qa", ())

    def task(self, name: str) -> SuiteTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise unknown_name(f"{self.title} task folder", name, self.task_names)

    def languages(self, name: str) -> tuple[str, ...]:
        return self.task(name).languages

    def group_of(self, name: str) -> str:
        """The groups of a task, joined ("classification, multi_choice" for XTREME-R's xcopa)."""
        return ", ".join(group for group, tasks in self.groups.items() if name in tasks)


XTREME = Suite(
    name="xtreme",
    title="XTREME",
    tasks=(
        SuiteTask("xnli", L.XNLI),
        SuiteTask("pawsx", L.PAWSX),
        SuiteTask("udpos", L.UDPOS),
        SuiteTask("panx", L.PANX),
        SuiteTask("xquad", L.XQUAD),
        SuiteTask("mlqa", L.MLQA),
        SuiteTask("tydiqa", L.TYDIQA),
        SuiteTask("bucc2018", L.BUCC),
        SuiteTask("tatoeba", L.TATOEBA),
    ),
    groups={  # evaluate.py XTREME_GROUP2TASK
        "classification": ("pawsx", "xnli"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("bucc2018", "tatoeba"),
    },
)

XTREME_R = Suite(
    name="xtreme-r",
    title="XTREME-R",
    tasks=(
        SuiteTask("xnli", L.XNLI),
        SuiteTask("xcopa", L.XCOPA),
        SuiteTask("udpos", L.UDPOS_R),
        SuiteTask("panx", L.PANX_R),
        SuiteTask("xquad", L.XQUAD_R),
        SuiteTask("mlqa", L.MLQA),
        SuiteTask("tydiqa", L.TYDIQA),
        SuiteTask("tatoeba", L.TATOEBA_R),
        SuiteTask("mewslix", L.MEWSLIX),
        SuiteTask("lareqa", L.LAREQA),
    ),
    groups={  # evaluate.py XTREME_R_GROUP2TASK: xcopa is in two groups there too
        "classification": ("xnli", "xcopa"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("tatoeba", "mewslix"),
        "multi_choice": ("xcopa",),
    },
)

SUITES: dict[str, Suite] = {suite.name: suite for suite in (XTREME, XTREME_R)}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise unknown_name("suite", name, SUITES) from None


def suites_with(task: str) -> list[Suite]:
    return [suite for suite in SUITES.values() if task in suite.task_names]


def suite_task(task: str) -> SuiteTask:
    """The task's row in any suite (a task's format and metrics are the same in every suite)."""
    for suite in SUITES.values():
        if task in suite.task_names:
            return suite.task(task)
    names = sorted({name for suite in SUITES.values() for name in suite.task_names})
    raise XstiltsError(f"unknown XTREME task folder {task!r}; valid: {', '.join(names)}")
