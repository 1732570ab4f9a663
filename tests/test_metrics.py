"""Metrics against values computed by hand."""

import numpy as np
import pytest

from xstilts.errors import XstiltsError
from xstilts.evaluate.metrics import accuracy, get_metric, nearest_neighbours, retrieval_accuracy


def test_accuracy_by_hand():
    assert accuracy(np.array([1, 0, 2, 2]), np.array([1, 1, 2, 0])) == 0.5
    with pytest.raises(ValueError):
        accuracy(np.array([1]), np.array([1, 2]))
    with pytest.raises(ValueError):
        accuracy(np.array([]), np.array([]))


def test_retrieval_recovers_a_planted_permutation():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(200, 16)).astype(np.float32)
    source = target + 0.01 * rng.normal(size=target.shape).astype(np.float32)
    assert retrieval_accuracy(source, target) == 1.0
    perm = rng.permutation(200)
    assert (nearest_neighbours(source[perm], target)[:, 0] == perm).all()
    # scale does not matter for cosine; shuffling half the targets costs exactly those rows
    assert retrieval_accuracy(3.0 * source, target) == 1.0
    shuffled = target.copy()
    shuffled[:100] = target[:100][::-1]
    assert retrieval_accuracy(source, shuffled) == pytest.approx(0.5)


def test_retrieval_by_hand_on_two_dimensions():
    source = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]], dtype=np.float32)
    target = np.array([[1.0, 0.05], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    # nearest by cosine: row0 -> 0 (right), row1 -> 2 (wrong), row2 -> 0 (wrong): 1/3
    assert retrieval_accuracy(source, target) == pytest.approx(1 / 3)


def test_unknown_metric_lists_valid():
    with pytest.raises(XstiltsError, match="accuracy"):
        get_metric("f2")


# ------------------------------------------------------------------------ every metric, worked by hand


def test_every_metric_takes_a_language_keyword():
    import inspect

    from xstilts.evaluate.metrics import METRICS

    for name, metric in METRICS.items():
        assert "language" in inspect.signature(metric).parameters, name


def test_registry_metrics_all_exist():
    from xstilts.evaluate.metrics import METRICS
    from xstilts.tasks.registry import TASK_TABLE

    used = {name for spec in TASK_TABLE for name in (spec.metric, *spec.extra_metrics)}
    assert used <= set(METRICS), sorted(used - set(METRICS))
    assert all(get_metric(name) is METRICS[name] for name in used)


def test_accuracy_tokens_by_hand():
    from xstilts.evaluate.metrics import accuracy_tokens

    assert accuracy_tokens([["a", "x"], ["c"]], [["a", "b"], ["c"]]) == pytest.approx(2 / 3)
    # tag ids are looked up in labels=
    assert accuracy_tokens([[0, 0], [2]], [[0, 1], [2]], labels=("a", "b", "c")) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="sentence 2 has 2 predicted tags for 1 gold tags"):
        accuracy_tokens([["a", "b"], ["c", "d"]], [["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="no tokens"):
        accuracy_tokens([[]], [[]])
    with pytest.raises(ValueError, match="pass labels="):
        accuracy_tokens([[0]], [[0]])


def test_ner_f1_is_entity_level_by_hand():
    from xstilts.evaluate.metrics import ner_f1

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O"]]
    # gold entities PER(0-1) LOC(3) ORG(1-2); predicted PER(0-1) right, ORG(1-1) wrong span:
    # precision 1/2, recall 1/3 -> F1 = 2 * 1/6 / (5/6) = 0.4
    assert ner_f1(pred, gold) == pytest.approx(0.4)
    assert ner_f1(gold, gold) == 1.0
    # conlleval-compatible (seqeval's default mode): an entity may start with I-
    assert ner_f1([["I-PER", "I-PER"]], [["B-PER", "I-PER"]]) == 1.0
    # tag ids through labels=
    labels = ("O", "B-PER", "I-PER")
    assert ner_f1([[1, 2, 0]], [[1, 2, 0]], labels=labels) == 1.0


def test_ner_f1_edge_cases():
    from xstilts.evaluate.metrics import ner_f1

    # no entity anywhere: precision and recall are undefined; seqeval (and XTREME) report 0
    assert ner_f1([["O", "O"]], [["O", "O"]]) == 0.0
    # nothing predicted, or nothing to find
    assert ner_f1([["O", "O"]], [["B-LOC", "O"]]) == 0.0
    assert ner_f1([["B-LOC", "O"]], [["O", "O"]]) == 0.0
    with pytest.raises(ValueError, match="sentence 1 has 3 predicted tags for 2 gold tags"):
        ner_f1([["O", "O", "O"]], [["O", "O"]])
    with pytest.raises(ValueError, match="2 predictions for 1 sentences"):
        ner_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(XstiltsError):  # ScoringError is both
        ner_f1([], [])


def test_pos_f1_is_seqeval_0012_on_upos_tags():
    from xstilts.evaluate.metrics import accuracy_tokens, pos_f1

    gold = [["DET", "NOUN", "NOUN", "VERB"]]
    pred = [["DET", "NOUN", "ADJ", "VERB"]]
    # a run of equal tags is one chunk: gold chunks DET, NOUN(1-2), VERB (3); predicted DET, NOUN(1),
    # ADJ(2), VERB (4); right: DET and VERB -> P 1/2, R 2/3, F1 4/7; token accuracy is 3/4
    assert pos_f1(pred, gold) == pytest.approx(4 / 7)
    assert accuracy_tokens(pred, gold) == pytest.approx(3 / 4)
    # SCONJ starts with "S" (single): two in a row are two chunks, each must be right
    assert pos_f1([["SCONJ", "ADV"]], [["SCONJ", "SCONJ"]]) == pytest.approx(2 * 0.5 * 0.5 / 1.0)
    # SYM too: gold SYM(0) SYM(1) NOUN(2), predicted SYM(0) NOUN(1-2) -> P 1/2, R 1/3, F1 0.4
    assert pos_f1([["SYM", "NOUN", "NOUN"]], [["SYM", "SYM", "NOUN"]]) == pytest.approx(0.4)


def test_pos_f1_differs_from_seqeval_1x_as_the_published_numbers_do():
    """Cases where seqeval >= 1.0 gives a higher POS F1 than the 0.0.12 that XTREME's numbers used."""
    from xstilts.evaluate.metrics import pos_f1, pos_precision, pos_recall

    # 0.0.12: the type is the whole tag, so CCONJ is no SCONJ: 2 of 3 chunks right (seqeval 1.x: 1.0,
    # both being "CONJ")
    gold, pred = [["DET", "SCONJ", "NOUN"]], [["DET", "CCONJ", "NOUN"]]
    assert pos_f1(pred, gold) == pytest.approx(2 / 3)
    assert (pos_precision(pred, gold), pos_recall(pred, gold)) == pytest.approx((2 / 3, 2 / 3))
    assert pos_f1([["CCONJ", "CCONJ"]], [["SCONJ", "SCONJ"]]) == 0.0  # 1.x: 1.0
    # 0.0.12: X is a chunk like any other tag; a wrong X costs precision (1.x drops an X that ends a
    # sentence: P 1, R 1/2, F1 2/3)
    gold, pred = [["ADJ", "ADP"]], [["ADJ", "X"]]
    assert (pos_precision(pred, gold), pos_recall(pred, gold), pos_f1(pred, gold)) == (0.5, 0.5, 0.5)
    # and a right X counts (1.x: 0.0, no chunk on either side)
    assert pos_f1([["X"]], [["X"]]) == 1.0


def test_tagging_precision_and_recall_by_hand():
    from xstilts.evaluate.metrics import ner_f1, ner_precision, ner_recall, pos_precision, pos_recall

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O"]]
    # predicted PER(0-1) right, ORG(1-1) wrong span, of 3 gold entities: P 1/2, R 1/3
    assert ner_precision(pred, gold) == pytest.approx(1 / 2)
    assert ner_recall(pred, gold) == pytest.approx(1 / 3)
    assert ner_f1(pred, gold) == pytest.approx(0.4)
    labels = ("O", "B-PER", "I-PER")
    assert ner_precision([[1, 0, 0]], [[1, 2, 0]], labels=labels) == 0.0  # PER(0) is not PER(0-1)
    # nothing predicted: precision 0 (undefined); nothing to find: recall 0
    assert ner_precision([["O"]], [["B-LOC"]]) == 0.0 and ner_recall([["B-LOC"]], [["O"]]) == 0.0
    gold, pred = [["DET", "NOUN", "NOUN", "VERB"]], [["DET", "NOUN", "ADJ", "VERB"]]
    assert (pos_precision(pred, gold), pos_recall(pred, gold)) == pytest.approx((1 / 2, 2 / 3))
    with pytest.raises(ValueError, match="sentence 1 has 1 predicted tags for 2 gold tags"):
        pos_recall([["DET"]], [["DET", "NOUN"]])


def test_seqeval_0012_chunking_rules_by_hand():
    from xstilts.evaluate.tag_chunks import chunks, split_tag

    assert split_tag("B-PER") == ("B", "PER") and split_tag("NOUN") == ("N", "NOUN")
    assert split_tag("B-A-B") == ("B", "B") and split_tag("O") == ("O", "O")
    # positions run over the sentences laid end to end, one separator after each
    expected = [("PER", 0, 1), ("LOC", 3, 3), ("ORG", 5, 5)]
    assert chunks([["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG"]]) == expected
    # an I- tag after O or after another type opens an entity
    assert chunks([["O", "I-PER", "I-LOC"]]) == [("PER", 1, 1), ("LOC", 2, 2)]
    # E and S close what they end; S opens too
    assert chunks([["B-A", "E-A", "S-A", "S-A"]]) == [("A", 0, 1), ("A", 2, 2), ("A", 3, 3)]
    # "." is exempt from the type-change rule: it neither opens nor continues a chunk
    assert chunks([["NOUN", ".", "NOUN"]]) == [("NOUN", 0, 0), ("NOUN", 2, 2)]
    # a tag starting with "O" never opens a chunk
    assert chunks([["OTHER", "OTHER"], ["O-PER"]]) == []
    # a chunk ended without a new start reaches back to the last start (0.0.12 keeps the stale offset)
    assert chunks([["E-A", "X-A", "O"]]) == [("A", 0, 0), ("A", 0, 1)]
    assert chunks([[], []]) == []


def test_an_empty_tag_is_an_error():
    from xstilts.evaluate.metrics import pos_f1

    with pytest.raises(XstiltsError, match="empty tag"):
        pos_f1([["NOUN", ""]], [["NOUN", "VERB"]])


def test_tagging_metrics_match_seqeval_0012_outputs():
    """`tests/fixtures/seqeval_0012/cases.json` holds (gold, predicted) pairs, crafted and random (UPOS,
    IOB2, mixed, malformed tags), with the chunks, precision, recall and F1 the real seqeval 0.0.12 gave.
    It was made by `tests/fixtures/seqeval_0012/generate.py` from the 0.0.12 sdist on PyPI (the old
    package is no dependency); its docstring says how to regenerate it. Floats must match exactly."""
    import json
    from pathlib import Path

    from xstilts.evaluate.metrics import METRICS
    from xstilts.evaluate.tag_chunks import chunks

    path = Path(__file__).parent / "fixtures" / "seqeval_0012" / "cases.json"
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    assert len(cases) > 50
    for number, case in enumerate(cases):
        gold, pred = case["gold"], case["pred"]
        assert chunks(gold) == [tuple(chunk) for chunk in case["gold_chunks"]], number
        for task in ("pos", "ner"):
            for measure in ("precision", "recall", "f1"):
                assert METRICS[f"{task}_{measure}"](pred, gold) == case[measure], (number, task, measure)
    # the fixture does separate 0.0.12 from 1.x: CCONJ for SCONJ is in it, and scores 2/3
    assert cases[0]["pred"] == [["DET", "CCONJ", "NOUN"]] and cases[0]["f1"] == pytest.approx(2 / 3)


def test_qa_metrics_through_the_registry():
    from xstilts.evaluate.metrics import mlqa_em, mlqa_f1, squad_em, squad_f1

    predictions = {"q1": "the Eiffel Tower", "q2": "in Paris France", "q3": "blue"}
    gold = {"q1": ["Eiffel Tower"], "q2": ["Paris", "Paris, France"], "q3": ["red"]}
    assert squad_em(predictions, gold) == pytest.approx(1 / 3)
    assert squad_f1(predictions, gold, language="de") == pytest.approx(0.6)  # language is ignored
    # MLQA: unicode punctuation goes, so guillemets and the ellipsis no longer block an exact match
    assert mlqa_em({"q": "«Paris»…"}, {"q": ["Paris"]}) == 1.0
    assert squad_em({"q": "«Paris»…"}, {"q": ["Paris"]}) == 0.0
    # full-width Chinese punctuation and the Arabic comma are punctuation too
    assert mlqa_em({"q": "北京。"}, {"q": ["北京"]}, language="zh") == 1.0
    assert mlqa_f1({"q": "شمال، شرق"}, {"q": ["شمال شرق"]}, language="ar") == 1.0
    assert mlqa_f1({"q": "¿la ciudad?"}, {"q": ["ciudad"]}, language="es") == 1.0
    with pytest.raises(ValueError, match="needs the answer language"):
        mlqa_f1({"q": "x"}, {"q": ["x"]}, language=None)


def test_squad_v2_no_answer_convention():
    from xstilts.evaluate.metrics import squad_v2_em, squad_v2_f1

    all_null = {"q1": [], "q2": []}
    assert squad_v2_em({"q1": "", "q2": ""}, all_null) == 1.0
    assert squad_v2_f1({"q1": "", "q2": ""}, all_null) == 1.0
    assert squad_v2_f1({"q1": "", "q2": "Paris"}, all_null) == 0.5
    # q1 answerable: "the tower" vs "eiffel tower" -> P 1, R 1/2, F1 2/3, not exact; q2 abstained rightly
    gold = {"q1": ["Eiffel Tower"], "q2": []}
    predictions = {"q1": "the tower", "q2": ""}
    assert squad_v2_em(predictions, gold) == 0.5
    assert squad_v2_f1(predictions, gold) == pytest.approx((2 / 3 + 1) / 2)
    # abstaining on an answerable question scores 0
    assert squad_v2_f1({"q1": "", "q2": ""}, gold) == 0.5


def test_qa_missing_and_extra_ids_are_errors():
    from xstilts.evaluate.metrics import squad_f1, squad_v2_em

    with pytest.raises(ValueError, match="1 questions have no prediction: q2"):
        squad_f1({"q1": "x"}, {"q1": ["x"], "q2": ["y"]})
    with pytest.raises(ValueError, match="1 predictions are for unknown questions: q9"):
        squad_v2_em({"q1": "x", "q9": "y"}, {"q1": ["x"]})
    with pytest.raises(ValueError, match="no questions"):
        squad_f1({}, {})


def test_bucc_f1_by_hand():
    from xstilts.evaluate.metrics import bucc_f1, bucc_precision_recall_f1

    gold = {("s1", "t1"), ("s2", "t2"), ("s3", "t3"), ("s4", "t4")}
    predicted = [("s1", "t1"), ("s2", "t2"), ("s3", "t9"), ("s1", "t1")]  # the repeat counts once
    # 2 right of 3 predicted, 2 of 4 found: F1 = 2 * (2/3)(1/2) / (2/3 + 1/2) = 4/7
    assert bucc_precision_recall_f1(predicted, gold) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    assert bucc_f1(predicted, gold, language="de") == pytest.approx(4 / 7)
    assert bucc_f1(set(), gold) == 0.0
    assert bucc_f1(gold, gold) == 1.0
    with pytest.raises(ValueError, match="must be \\(source id, target id\\)"):
        bucc_f1(["s1\tt1"], gold)


def test_bucc_precision_and_recall_by_hand():
    from xstilts.evaluate.metrics import METRICS

    gold = {("s1", "t1"), ("s2", "t2"), ("s3", "t3"), ("s4", "t4")}
    predicted = [("s1", "t1"), ("s2", "t2"), ("s3", "t9")]
    # 2 right of 3 predicted, 2 of 4 gold found
    assert METRICS["bucc_precision"](predicted, gold, language="de") == pytest.approx(2 / 3)
    assert METRICS["bucc_recall"](predicted, gold, language="de") == pytest.approx(1 / 2)
    # none right: all three are 0, as XTREME's bucc_f1
    assert METRICS["bucc_precision"]([("s1", "t2")], gold) == 0.0 == METRICS["bucc_recall"](set(), gold)


def test_map_at_20_by_hand():
    """LAReQA-style: several relevant candidates (all language versions of the answer)."""
    # q1: relevant {a, b}; hits at ranks 2 and 3 -> (1/2 + 2/3) / 2
    # q2: one relevant at rank 4 -> 1/4 (Mewsli-X: the reciprocal rank)
    # q3: its only relevant candidate at rank 21 -> 0 (outside the top 20)
    # q4: relevant {a, b, c}, a repeated at ranks 1 and 2 counts once -> (1/1) / 3
    ranked_q3 = [f"x{i}" for i in range(20)] + ["g"]
    predictions = {"q1": ["x", "a", "b"], "q2": ["w", "x", "y", "g"], "q3": ranked_q3, "q4": ["a", "a"]}
    gold = {"q1": ["a", "b"], "q2": ["g"], "q3": ["g"], "q4": ["a", "b", "c"]}
    expected = ((1 / 2 + 2 / 3) / 2 + 1 / 4 + 0 + 1 / 3) / 4
    assert get_metric("map_at_20")(predictions, gold) == pytest.approx(expected)


def test_map_at_k_divides_by_k_when_more_are_relevant():
    from xstilts.evaluate.metrics import average_precision_at_k

    relevant = [f"r{i}" for i in range(30)]
    assert average_precision_at_k(relevant, relevant, k=20) == pytest.approx(1.0)
    assert average_precision_at_k(["r0"], relevant, k=20) == pytest.approx(1 / 20)


def test_map_at_20_names_queries_without_a_ranking():
    with pytest.raises(XstiltsError, match="1 queries have no prediction: q2"):
        get_metric("map_at_20")({"q1": ["a"]}, {"q1": ["a"], "q2": ["b"]})
