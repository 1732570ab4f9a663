"""Known-answer tests of the attack's constraints, goal and searches.

The search is tested against a rule classifier whose probabilities are written down here, so every
query count and chosen edit can be worked out by hand; `test_attack_runs_on_a_real_model` then runs the
same machinery on the tiny XLM-R forward pass."""

import numpy as np
import pytest

from xstilts.robustness.attack import Attack, as_result
from xstilts.robustness.constraints import Constraints, without_stop_words, word_budget
from xstilts.robustness.edits import Edit, apply_edits
from xstilts.robustness.search import Search
from xstilts.robustness.victim import pad_features, untargeted


class TableSubstitution:
    """Candidates from a fixed word -> replacements table (the transformation is not under test here)."""

    name = "table"

    def __init__(self, table: dict[str, list[str]], language: str = "de"):
        self.table, self.language = table, language

    def candidates(self, examples, lang, fields):
        from xstilts.robustness.words import words_of

        out = []
        for example in examples:
            found = []
            for field in fields:
                for i, word in enumerate(words_of(example[field])):
                    found += [Edit(field, i, i + 1, new, self.language) for new in self.table.get(word, [])]
            out.append(found)
        return out


# p(label 0) by the words present: "superb" is confident, "nice" hesitant, "awful" flips the label
def _p_positive(text: str) -> float:
    words = text.split()
    if "awful" in words:
        return 0.3
    if "superb" in words:
        return 0.9 if "lengthy" in words else 0.8
    return 0.6


class RuleVictim:
    """Two classes; label 0 is likely while the text says "superb"; every example is one counted query."""

    unk_token = "<unk>"

    def __init__(self):
        self.queries, self.batches, self.texts = 0, [], []

    def probabilities(self, examples):
        self.queries += len(examples)
        self.batches.append(len(examples))
        self.texts += [e["text"] for e in examples]
        p = np.array([_p_positive(e["text"]) for e in examples])
        return np.stack([p, 1 - p], axis=1)


def _attack(table, search="greedy", budget=300, fraction=0.5, importance="delete", **kwargs):
    return Attack(
        TableSubstitution(table),
        Constraints(max_words_fraction=fraction, **kwargs),
        Search(search, importance=importance, query_budget=budget),
    )


def test_goal_is_untargeted_misclassification():
    probabilities = np.array([[0.7, 0.3], [0.4, 0.6]])
    scores, succeeded = untargeted(probabilities, [0, 0])
    assert scores == pytest.approx([0.3, 0.6]) and succeeded.tolist() == [False, True]


def test_word_budget_and_stop_words():
    assert [word_budget(n, 0.25) for n in (0, 1, 4, 7, 8)] == [0, 1, 1, 1, 2]
    example = {"text": "The house of the king"}
    edits = [Edit("text", i, i + 1, "x", "de") for i in range(5)] + [Edit("text", 2, 4, "des", "de")]
    kept = without_stop_words(example, edits, "en")
    # "The", "of", "the" are English stop words; the phrase "of the" is stop words only
    assert [(e.start, e.end) for e in kept] == [(1, 2), (4, 5)]


def test_edits_replace_words_and_keep_what_is_between():
    example = {"text": "Hello, old world!", "label": 0}
    out = apply_edits(example, [Edit("text", 2, 3, "Welt", "de"), Edit("text", 0, 2, "Hallo alte", "de")])
    assert out["text"] == "Hallo alte Welt!" and example["text"] == "Hello, old world!"
    with pytest.raises(ValueError, match="overlaps"):
        apply_edits(example, [Edit("text", 0, 2, "a", "de"), Edit("text", 1, 2, "b", "de")])


def test_greedy_takes_the_most_important_word_first_and_stops_at_success():
    victim = RuleVictim()
    table = {"superb": ["nice", "awful"], "lengthy": ["tedious"]}
    [record] = _attack(table).run(
        victim, [{"id": "a", "text": "the film was superb and lengthy", "label": 0}], "en", ["text"]
    )
    assert record.outcome == "successful" and record.perturbed["text"] == "the film was awful and lengthy"
    # 1 clean query, 2 importance queries (superb, lengthy), 2 candidates at "superb" (the most important)
    assert record.queries == 5 == victim.queries
    assert record.words_changed == 1 and record.languages_mixed == ["de"]
    assert record.edits == [
        {"field": "text", "start": 3, "end": 4, "original": "superb", "text": "awful", "language": "de"}
    ]
    assert (record.prediction_before, record.prediction_after) == (0, 1)


def test_greedy_batches_every_example_in_flight_together():
    victim = RuleVictim()
    examples = [{"id": str(i), "text": "the film was superb and lengthy", "label": 0} for i in range(3)]
    _attack({"superb": ["nice", "awful"], "lengthy": ["tedious"]}).run(victim, examples, "en", ["text"])
    assert victim.batches == [3, 6, 6]  # clean, importance, candidates: one call each for all examples


def test_query_budget_ends_an_attack_as_failed():
    record = _attack({"superb": ["nice", "awful"], "lengthy": ["tedious"]}, budget=4).run(
        RuleVictim(), [{"id": "a", "text": "the film was superb and lengthy", "label": 0}], "en", ["text"]
    )[0]
    # clean + 2 importance queries leave one query: "nice" only, which does not flip the label
    assert record.outcome == "failed" and record.queries == 4


def test_skipped_and_unattackable_examples():
    victim = RuleVictim()
    records = _attack({"superb": ["awful"]}).run(
        victim,
        [
            {"id": "wrong", "text": "the film was superb", "label": 1},  # already misclassified
            {"id": "empty", "text": "", "label": 0},
            {"id": "stop", "text": "the and of", "label": 0},  # stop words only
        ],
        "en",
        ["text"],
    )
    assert [r.outcome for r in records] == ["skipped", "unattackable", "unattackable"]
    assert as_result(records[0]).outcome == "skipped" and as_result(records[1]) is None
    assert victim.queries == 1


def test_beam_search_expands_every_beam_and_keeps_the_best():
    victim = RuleVictim()
    [record] = _attack({"superb": ["nice", "awful"], "lengthy": ["tedious"]}, search="beam").run(
        victim, [{"id": "a", "text": "the film was superb and lengthy", "label": 0}], "en", ["text"]
    )
    # round 1 tries all three single edits (no importance queries) and "awful" flips the label
    assert record.outcome == "successful" and record.queries == 1 + 3
    assert record.perturbed["text"] == "the film was awful and lengthy"


def test_random_baseline_uses_the_word_budget_in_one_query_and_is_seeded():
    table = {w: [w.upper()] for w in ("film", "superb", "lengthy", "very", "nice")}
    example = {"id": "a", "text": "film superb lengthy dull nice", "label": 0}
    first = _attack(table, search="random", fraction=0.4).run(RuleVictim(), [example], "en", ["text"])[0]
    again = _attack(table, search="random", fraction=0.4).run(RuleVictim(), [example], "en", ["text"])[0]
    assert first.words_changed == 2 and first.queries == 2  # floor(0.4 x 5) words, clean + one query
    assert first.perturbed == again.perturbed


def test_fixed_length_padding_for_the_benchmark():
    padded = pad_features([{"input_ids": [0, 5, 2], "attention_mask": [1, 1, 1], "labels": 1}], 6, 1)
    assert padded[0]["input_ids"] == [0, 5, 2, 1, 1, 1] and padded[0]["attention_mask"] == [1, 1, 1, 0, 0, 0]
    nested = pad_features([{"input_ids": [[0, 2], [0, 4, 2]], "attention_mask": [[1, 1], [1, 1, 1]]}], 4, 1)
    assert nested[0]["input_ids"] == [[0, 2, 1, 1], [0, 4, 2, 1]]


@pytest.mark.parametrize(
    "importance, blank", [("delete", "the film was  and lengthy"), ("unk", "the film was <unk> and lengthy")]
)
def test_word_importance_deletes_the_word_or_puts_the_tokenizers_unk_token_in_its_place(importance, blank):
    victim = RuleVictim()
    table = {"superb": ["nice", "awful"], "lengthy": ["tedious"]}
    example = {"id": "a", "text": "the film was superb and lengthy", "label": 0}
    _attack(table, importance=importance).run(victim, [example], "en", ["text"])
    assert victim.texts[1] == blank  # the first importance query: "superb" removed


def test_sentence_similarity_constraint_on_a_real_encoder():
    from xstilts.models.tiny import TINY_MODEL_NAME
    from xstilts.robustness.constraints import SentenceSimilarity

    similarity = SentenceSimilarity(TINY_MODEL_NAME)
    clean = {"text": "In the beginning God created the heaven and the earth."}
    near = {"text": "In the beginning God created the heaven and the world."}
    far = {"text": "Zebra quantum 7734 ### ??? xylophone"}
    same, close, distant = similarity.cosines([clean["text"]] * 3, [clean["text"], near["text"], far["text"]])
    assert same == pytest.approx(1.0, abs=1e-5) and distant < close < same
    threshold = (close + distant) / 2
    constraints = Constraints(min_similarity=threshold, similarity=similarity)
    keep = constraints.similar([clean] * 3, [clean, near, far], ["text"])
    assert keep.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="needs a SentenceSimilarity"):
        Constraints(min_similarity=0.5)
