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
