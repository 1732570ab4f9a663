"""An attack = transformation + constraints + goal (untargeted misclassification) + search, run on all
examples of one language at once; it returns one `AttackRecord` per example.

Inputs with nothing to attack (empty, or stop words only) are not attacked: their records have outcome
`unattackable`, and the metrics count them apart (`unattackable`) instead of crashing or hiding them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xstilts.robustness.constraints import Constraints, word_budget
from xstilts.robustness.edits import Edit, Transformation, replaced_words
from xstilts.robustness.metrics import AttackResult
from xstilts.robustness.records import AttackRecord
from xstilts.robustness.search import AttackState, Search
from xstilts.robustness.victim import Victim, untargeted
from xstilts.robustness.words import word_spans

UNATTACKABLE = "unattackable"


def _edit_json(example: dict, edit: Edit) -> dict:
    return {
        "field": edit.field,
        "start": edit.start,
        "end": edit.end,
        "original": replaced_words(example, edit),
        "text": edit.text,
        "language": edit.language,
    }


def _record(state: AttackState, fields: Sequence[str], words: int) -> AttackRecord:
    example, applied = state.example, state.applied
    perturbed = state.perturbed
    return AttackRecord(
        id=str(example.get("id", "")),
        language=state.lang,
        label=int(state.label),
        prediction_before=state.prediction_before,
        prediction_after=state.prediction_after,
        outcome=state.outcome or UNATTACKABLE,
        queries=state.queries,
        words=words,
        words_changed=sum(edit.words for edit in applied),
        languages_mixed=sorted({e.language for e in applied if e.language != state.lang}),
        original={f: example[f] for f in fields},
        perturbed={f: perturbed[f] for f in fields},
        edits=[_edit_json(example, edit) for edit in sorted(applied, key=lambda e: (e.field, e.start))],
    )


def as_result(record: AttackRecord) -> AttackResult | None:
    """The metrics' view of a record; None for an unattackable input (counted apart)."""
    if record.outcome == UNATTACKABLE:
        return None
    return AttackResult(record.outcome, record.queries, record.words, record.words_changed)


@dataclass
class Attack:
    transformation: Transformation
    constraints: Constraints
    search: Search

    def run(
        self,
        victim: Victim,
        examples: Sequence[dict],
        lang: str,
        fields: Sequence[str],
        proposed: Sequence[Sequence[Edit]] | None = None,
    ) -> list[AttackRecord]:
        """Attack every example of language `lang` on `fields`; records in the order of `examples`.
        `proposed`: the transformation's candidates when already computed (an attack and its baseline)."""
        if proposed is None:
            proposed = self.transformation.candidates(examples, lang, fields)
        states, words = [], []
        for example, candidates in zip(examples, proposed, strict=True):
            count = sum(len(word_spans(example[f])) for f in fields)
            allowed = self.constraints.allowed(example, candidates, lang)
            budget = word_budget(count, self.constraints.max_words_fraction)
            states.append(AttackState(example, int(example["label"]), lang, allowed, budget))
            words.append(count)
        live = [state for state in states if state.candidates]

        def query(batch, labels):
            probabilities = victim.probabilities(batch)
            scores, succeeded = untargeted(probabilities, labels)
            return scores, succeeded, probabilities.argmax(-1)

        if live:
            self.search.run(live, query, self.constraints, fields, victim.unk_token)
        return [_record(state, fields, count) for state, count in zip(states, words, strict=True)]
