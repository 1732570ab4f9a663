"""SQuAD / MLQA scores against values worked out by hand."""

import pytest

from xstilts.evaluate.qa_metrics import normalize_answer, squad_scores


def test_squad_normalisation():
    assert normalize_answer("The  Eiffel Tower!") == ["eiffel", "tower"]
    assert normalize_answer("an apple, a pear") == ["apple", "pear"]
    # SQuAD strips ASCII punctuation only: the unicode ellipsis and guillemets survive
    assert normalize_answer("«Paris»…") == ["«paris»…"]


def test_squad_scores_by_hand():
    predictions = {"q1": "the Eiffel Tower", "q2": "in Paris France", "q3": "blue"}
    references = {"q1": ["Eiffel Tower"], "q2": ["Paris", "Paris, France"], "q3": ["red"]}
    scores = squad_scores(predictions, references)
    # q1: exact after normalisation. q2: best gold "paris france" vs "in paris france":
    # precision 2/3, recall 1 -> F1 0.8, not exact. q3: nothing shared.
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)


def test_empty_prediction_and_empty_gold():
    assert squad_scores({"q": ""}, {"q": ["Paris"]}) == {"exact_match": 0.0, "f1": 0.0}
    # an answer made only of articles and punctuation normalises to nothing on both sides
    assert squad_scores({"q": "The."}, {"q": ["a"]})["exact_match"] == 1.0


def test_mlqa_uses_unicode_punctuation_and_language_articles():
    assert normalize_answer("«Paris»…", "en") == ["paris"]
    assert normalize_answer("Die Stadt der Liebe", "de") == ["stadt", "liebe"]
    assert normalize_answer("la ciudad", "es") == ["ciudad"]
    # Chinese: every Han character is a token, so partial overlap earns partial credit
    assert normalize_answer("北京大学。", "zh") == ["北", "京", "大", "学"]
    scores = squad_scores({"q": "北京"}, {"q": ["北京大学"]}, lang="zh")
    assert scores["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5) and scores["exact_match"] == 0.0
    assert squad_scores({"q": "北京"}, {"q": ["北京大学"]})["f1"] == 0.0  # SQuAD rules: one token each


def test_missing_predictions_are_named_not_scored_as_zero():
    with pytest.raises(ValueError, match=r"2 questions have no prediction: q2, q3"):
        squad_scores({"q1": "x"}, {"q1": ["x"], "q2": ["y"], "q3": ["z"]})
    with pytest.raises(ValueError, match="MLQA scores languages"):
        normalize_answer("x", "fr")


def test_v1_and_v2_differ_on_answers_that_normalise_to_nothing():
    from xstilts.evaluate.qa_metrics import qa_scores

    # v1.1: EM compares "" with "" (1) but F1 needs a shared token (0)
    assert qa_scores({"q": "The."}, {"q": ["a"]}, "squad") == {"exact_match": 1.0, "f1": 0.0}
    # v2.0: the gold answer "a" normalises to nothing and is dropped, leaving "no answer", which the
    # empty prediction matches on both counts
    assert qa_scores({"q": "The."}, {"q": ["a"]}, "squad_v2") == {"exact_match": 1.0, "f1": 1.0}
    # v2.0 keeps the best of the remaining gold answers
    assert qa_scores({"q": "Paris"}, {"q": ["the", "Paris"]}, "squad_v2") == {"exact_match": 1.0, "f1": 1.0}


def test_rules_and_gold_shapes_are_checked():
    from xstilts.evaluate.qa_metrics import qa_scores

    with pytest.raises(ValueError, match="unknown QA scoring rules"):
        qa_scores({"q": "x"}, {"q": ["x"]}, "squad3")
    with pytest.raises(ValueError, match="without gold answers"):
        qa_scores({"q": "x"}, {"q": []}, "squad")
    with pytest.raises(ValueError, match="list of strings"):
        qa_scores({"q": "x"}, {"q": "x"}, "squad")
    with pytest.raises(ValueError, match="must be a string"):
        qa_scores({"q": None}, {"q": ["x"]}, "squad")
