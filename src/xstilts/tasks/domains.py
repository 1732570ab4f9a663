"""Domain shift as data: named pairs of an in-domain and an out-of-domain test set for one target.

A `DomainShift` names the target it trains (restricted to `train_domains` where the task's examples carry a
domain), the test set that shares that domain and the one that does not. The report compares the two per
language: in-domain score, out-of-domain score, the drop, the worst language and the English-to-mean gap.

- **Bible genres** (embedded): a target trained on verses of law and history and tested on held-out chapters
  of law and history (in-domain) and of the gospels and epistles (out-of-domain). An example's domain is
  the genre of the book of its first verse (`bible.genre_of_example`).
- **MNLI genres**: XNLI trained on MultiNLI (five genres), tested on XNLI pairs of those genres and of the
  five others (XNLI-1.0's test file names each pair's genre; the registry's `xnli-genres` reads it).
- **SQuAD-trained QA**: XQuAD (SQuAD's Wikipedia paragraphs, translated) against MLQA and TyDiQA-GoldP
  (other paragraphs and question writers), over the languages both test sets have.

A test set of another task than the target is scored with the target's model and head, so its kind must be
the target's.
"""

from __future__ import annotations

from dataclasses import dataclass

from xstilts.errors import XstiltsError, unknown_name
from xstilts.tasks.registry import MNLI_GENRES, OTHER_NLI_GENRES, get_task


@dataclass(frozen=True)
class TestSet:
    """A task's test split, or the part of it in `domains` (empty: all of it)."""

    task: str
    domains: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.task + (f" [{' + '.join(self.domains)}]" if self.domains else "")


@dataclass(frozen=True)
class DomainShift:
    name: str
    target: str  # the registry target that is trained
    in_domain: TestSet
    out_of_domain: TestSet
    train_domains: tuple[str, ...] = ()  # the target's training (and dev) data; empty: as registered
    description: str = ""

    def test_sets(self) -> dict[str, TestSet]:
        return {"in-domain": self.in_domain, "out-of-domain": self.out_of_domain}


BIBLE_IN = ("law", "history")
BIBLE_OUT = ("gospels_acts", "pauline_epistles", "general_epistles")

SHIFTS: tuple[DomainShift, ...] = (
    DomainShift(
        name="bible-law-history-to-gospels-epistles",
        target="bible-follows",
        train_domains=BIBLE_IN,
        in_domain=TestSet("bible-follows", BIBLE_IN),
        out_of_domain=TestSet("bible-follows", BIBLE_OUT),
        description="verse-follows-verse pairs: trained on law + history, tested there and on the NT",
    ),
    DomainShift(
        name="mnli-genres-xnli",
        target="xnli",
        in_domain=TestSet("xnli-genres", MNLI_GENRES),
        out_of_domain=TestSet("xnli-genres", OTHER_NLI_GENRES),
        description="MNLI-trained NLI: XNLI pairs of MNLI's five training genres vs its five other genres",
    ),
    DomainShift(
        name="squad-xquad-to-mlqa",
        target="xquad",
        in_domain=TestSet("xquad"),
        out_of_domain=TestSet("mlqa"),
        description="SQuAD-trained QA: XQuAD (SQuAD's own Wikipedia paragraphs) vs MLQA",
    ),
    DomainShift(
        name="squad-xquad-to-tydiqa",
        target="xquad",
        in_domain=TestSet("xquad"),
        out_of_domain=TestSet("tydiqa"),
        description="SQuAD-trained QA: XQuAD vs TyDiQA-GoldP (questions written without seeing the answer)",
    ),
)

DOMAIN_SHIFTS: dict[str, DomainShift] = {shift.name: shift for shift in SHIFTS}


def get_shift(name: str) -> DomainShift:
    try:
        return DOMAIN_SHIFTS[name]
    except KeyError:
        raise unknown_name("domain shift", name, DOMAIN_SHIFTS) from None


def shift_languages(shift: DomainShift, languages: list[str] | None = None) -> list[str]:
    """The languages both test sets have (in the in-domain task's order), within `languages` if given."""
    inside = get_task(shift.in_domain.task).languages
    outside = set(get_task(shift.out_of_domain.task).languages)
    return [lang for lang in inside if lang in outside and (languages is None or lang in languages)]


def in_domains(examples: list[dict], domains: tuple[str, ...], domain_of) -> list[dict]:
    """The examples whose domain (`domain_of(example)`) is one of `domains`; all of them when empty."""
    if not domains:
        return examples
    kept = [example for example in examples if domain_of(example) in domains]
    if not kept:
        raise XstiltsError(f"no example in the domains {', '.join(domains)}")
    return kept


def domain_of(task: str):
    """example -> its domain, for the tasks whose examples carry one (`TaskSpec.domains`): the genre of a
    Bible example's book, or the `domain` an adapter set (MultiNLI's and XNLI-1.0's genre column)."""
    from xstilts.tasks import bible

    spec = get_task(task)
    if not spec.domains:
        raise XstiltsError(f"the examples of task {task} carry no domain; a test set of it takes it whole")
    return bible.genre_of_example if spec.source == "bible" else lambda example: example.get("domain")


def check_shift(shift: DomainShift) -> None:
    """The test sets are scored with the target's head: their kinds must be the target's."""
    kind = get_task(shift.target).kind
    for test_set in shift.test_sets().values():
        if get_task(test_set.task).kind != kind:
            raise XstiltsError(
                f"domain shift {shift.name}: test set {test_set.task} is a {get_task(test_set.task).kind} "
                f"task, but the target {shift.target} is {kind}"
            )
        if test_set.domains:
            domain_of(test_set.task)
            unknown = set(test_set.domains) - set(get_task(test_set.task).domains)
            if unknown:
                raise XstiltsError(
                    f"domain shift {shift.name}: {test_set.task} has no domain {sorted(unknown)}; its "
                    f"domains: {', '.join(get_task(test_set.task).domains)}"
                )
