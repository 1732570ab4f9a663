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
    with pytest.raises(ValueError, match="sentence 1 has 2 predicted tags for 1 gold tags"):
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
    with pytest.raises(ValueError, match="sentence 0 has 3 predicted tags for 2 gold tags"):
        ner_f1([["O", "O", "O"]], [["O", "O"]])
    with pytest.raises(ValueError, match="2 predictions for 1 sentences"):
        ner_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(XstiltsError):  # ScoringError is both
        ner_f1([], [])


def test_pos_f1_is_seqeval_on_upos_tags():
    from xstilts.evaluate.metrics import accuracy_tokens, pos_f1

    gold = [["DET", "NOUN", "NOUN", "VERB"]]
    pred = [["DET", "NOUN", "ADJ", "VERB"]]
    # seqeval merges the two gold NOUNs into one chunk: gold chunks DET, NOUN(1-2), VERB (3); predicted
    # DET, NOUN(1), ADJ(2), VERB (4); right: DET and VERB -> P 1/2, R 2/3, F1 4/7; token accuracy is 3/4
    assert pos_f1(pred, gold) == pytest.approx(4 / 7)
    assert accuracy_tokens(pred, gold) == pytest.approx(3 / 4)
    # CCONJ and SCONJ share seqeval's type "CONJ" (the first letter is read as the chunk tag)
    assert pos_f1([["DET", "CCONJ", "NOUN"]], [["DET", "SCONJ", "NOUN"]]) == 1.0
    # SCONJ starts with "S" (single): two in a row are two chunks, each must be right
    assert pos_f1([["SCONJ", "ADV"]], [["SCONJ", "SCONJ"]]) == pytest.approx(2 * 0.5 * 0.5 / 1.0)


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
