"""Searches over candidate edits, for every example of a language at once.

All examples in flight advance in lock step: each round gathers the candidates of every unfinished
example and sends them to the victim in one call (dynamically padded batches), never one at a time.
- `greedy` (TextAttack's GreedyWordSwapWIR): word importance first (each attackable word deleted, or
  replaced by the tokenizer's unk token: the rise in 1 - p(gold) is its importance), then words in
  order of importance: at each, the candidate that raises the score most is kept if it raises it at all;
  the attack succeeds as soon as the prediction changes.
- `beam` (TextAttack's BeamSearch): each round expands every beam by every edit that still fits,
  keeps the `beam_width` best, and stops at success or when nothing is left to try.
- `random`: the non-adversarial baseline: random words, as many as the word budget allows, each
  replaced by a random candidate, one query.
Every query counts against the example's budget, the clean one included (TextAttack counts it too); an
example whose budget runs out has failed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from xstilts.robustness.constraints import Constraints
from xstilts.robustness.edits import Edit, apply_edits

SEARCHES = ("greedy", "beam", "random")


@dataclass
class AttackState:
    """One example under attack."""

    example: dict
    label: int
    lang: str
    candidates: list[Edit]  # allowed on the clean example
    word_budget: int
    applied: tuple[Edit, ...] = ()
    score: float = 0.0
    prediction_before: int = -1
    prediction_after: int = -1
    queries: int = 0
    outcome: str | None = None  # None while in flight
    beams: list[tuple[tuple[Edit, ...], float]] = field(default_factory=list)

    @property
    def perturbed(self) -> dict:
        return apply_edits(self.example, self.applied)

    def fits(self, applied: Sequence[Edit], edit: Edit) -> bool:
        """`edit` overlaps none of `applied` and keeps the changed words within the budget."""
        changed = sum(e.words for e in applied) + edit.words
        return changed <= self.word_budget and not any(edit.overlaps(e) for e in applied)


Query = Callable[[Sequence[dict], Sequence[int]], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""(examples, labels) -> (scores, succeeded, predictions), one victim call."""


@dataclass
class Search:
    method: str = "greedy"
    importance: str = "delete"  # or "unk"
    beam_width: int = 4
    query_budget: int = 300
    seed: int = 0

    def __post_init__(self):
        if self.method not in SEARCHES:
            raise ValueError(f"unknown search {self.method!r}; valid: {', '.join(SEARCHES)}")

    def run(
        self,
        states: list[AttackState],
        query: Query,
        constraints: Constraints,
        fields: Sequence[str],
        unk: str,
    ) -> None:
        """Attack `states` in place: clean query, then the chosen search; sets each state's outcome."""
        scores, succeeded, predictions = query([s.example for s in states], [s.label for s in states])
        for state, score, wrong, prediction in zip(states, scores, succeeded, predictions, strict=True):
            state.queries, state.score = 1, float(score)
            state.prediction_before = state.prediction_after = int(prediction)
            if wrong:
                state.outcome = "skipped"  # the model is wrong on the clean input: nothing to attack
        live = [s for s in states if s.outcome is None]
        if self.method == "random":
            self._random(live, query, constraints, fields)
        elif self.method == "beam":
            self._beam(live, query, constraints, fields)
        else:
            self._greedy(live, query, constraints, fields, unk)
        for state in live:
            if state.outcome is None:
                state.outcome = "failed"

    # -- shared pieces ------------------------------------------------------------------------------

    def _ask(self, requests: list[tuple[AttackState, tuple[Edit, ...]]], query: Query, constraints, fields):
        """Query every (state, edits) request allowed by the similarity constraint and the budgets, in one
        call; returns (state, edits, score, succeeded, prediction) for those sent."""
        perturbed = [apply_edits(state.example, edits) for state, edits in requests]
        similar = constraints.similar([state.example for state, _ in requests], perturbed, fields)
        sent, left = [], {}
        for (state, edits), example, ok in zip(requests, perturbed, similar, strict=True):
            remaining = left.setdefault(id(state), self.query_budget - state.queries)
            if ok and remaining > 0:
                sent.append((state, edits, example))
                left[id(state)] = remaining - 1
        if not sent:
            return []
        scores, succeeded, predictions = query([e for _, _, e in sent], [s.label for s, _, _ in sent])
        for state, _, _ in sent:
            state.queries += 1
        return [
            (state, edits, float(score), bool(won), int(prediction))
            for (state, edits, _), score, won, prediction in zip(
                sent, scores, succeeded, predictions, strict=True
            )
        ]

    @staticmethod
    def _take(state: AttackState, edits: tuple[Edit, ...], score: float, won: bool, prediction: int) -> None:
        state.applied, state.score, state.prediction_after = edits, score, prediction
        if won:
            state.outcome = "successful"

    def _out_of_queries(self, state: AttackState) -> bool:
        if state.queries >= self.query_budget:
            state.outcome = "failed"
            return True
        return False

    # -- greedy by word importance --------------------------------------------------------------------

    def _importance_order(self, live, query, constraints, fields, unk) -> dict[int, list[tuple[str, int]]]:
        """Per state, its attackable word positions (field, word) from most to least important."""
        requests, where = [], []
        for state in live:
            positions = sorted({(e.field, e.start) for e in state.candidates})
            for field_name, start in positions:
                blank = "" if self.importance == "delete" else unk
                requests.append((state, (Edit(field_name, start, start + 1, blank, state.lang),)))
                where.append((field_name, start))
        importance: dict[int, list[tuple[float, tuple[str, int]]]] = {id(s): [] for s in live}
        by_request = {id(edits): position for (_, edits), position in zip(requests, where, strict=True)}
        for state, edits, score, _, _ in self._ask(requests, query, Constraints(), fields):
            importance[id(state)].append((score - state.score, by_request[id(edits)]))
        # most important first; ties in reading order
        return {
            key: [p for _, p in sorted(found, key=lambda x: (-x[0], x[1]))]
            for key, found in importance.items()
        }

    def _greedy(self, live, query, constraints, fields, unk) -> None:
        order = self._importance_order(live, query, constraints, fields, unk)
        by_position = {
            id(s): {
                (e.field, e.start): [c for c in s.candidates if (c.field, c.start) == (e.field, e.start)]
                for e in s.candidates
            }
            for s in live
        }
        while True:
            requests = []
            for state in live:
                if state.outcome is not None or self._out_of_queries(state):
                    continue
                tried = False
                while order[id(state)] and not tried:
                    position = order[id(state)].pop(0)
                    fitting = [e for e in by_position[id(state)][position] if state.fits(state.applied, e)]
                    requests += [(state, (*state.applied, e)) for e in fitting]
                    tried = bool(fitting)
                if not tried:
                    state.outcome = "failed"  # every important word tried
            if not requests:
                return
            best: dict[int, tuple] = {}
            for result in self._ask(requests, query, constraints, fields):
                state, _, score, won, _ = result
                current = best.get(id(state))
                if current is None or (won, score) > (current[3], current[2]):
                    best[id(state)] = result
            for state, edits, score, won, prediction in best.values():
                if won or score > state.score:
                    self._take(state, edits, score, won, prediction)

    # -- beam search ----------------------------------------------------------------------------------

    def _beam(self, live, query, constraints, fields) -> None:
        for state in live:
            state.beams = [((), state.score)]
        while True:
            requests, seen = [], set()
            for state in live:
                if state.outcome is not None or self._out_of_queries(state):
                    continue
                for applied, _ in state.beams:
                    for edit in state.candidates:
                        key = (id(state), frozenset((*applied, edit)))
                        if key not in seen and state.fits(applied, edit):
                            seen.add(key)
                            requests.append((state, (*applied, edit)))
            if not requests:
                for state in live:
                    if state.outcome is None:
                        state.outcome = "failed"
                return
            found: dict[int, list] = {}
            for result in self._ask(requests, query, constraints, fields):
                found.setdefault(id(result[0]), []).append(result)
            for state in live:
                results = found.get(id(state))
                if state.outcome is not None:
                    continue
                if not results:
                    state.outcome = "failed"
                    continue
                results.sort(key=lambda r: (r[3], r[2]), reverse=True)  # successes first, then by score
                _, edits, score, won, prediction = results[0]
                self._take(state, edits, score, won, prediction)
                state.beams = [(r[1], r[2]) for r in results[: self.beam_width]]

    # -- the random baseline --------------------------------------------------------------------------

    def _random(self, live, query, constraints, fields) -> None:
        requests = []
        for state in live:
            rng = np.random.default_rng([self.seed, zlib.crc32(str(state.example.get("id", "")).encode())])
            positions = sorted({(e.field, e.start) for e in state.candidates})
            applied: list[Edit] = []
            for index in rng.permutation(len(positions)):
                here = [e for e in state.candidates if (e.field, e.start) == positions[index]]
                fitting = [e for e in here if state.fits(applied, e)]
                if fitting:
                    applied.append(fitting[rng.integers(len(fitting))])
            if applied:
                requests.append((state, tuple(applied)))
        for state, edits, score, won, prediction in self._ask(requests, query, constraints, fields):
            self._take(state, edits, score, won, prediction)
