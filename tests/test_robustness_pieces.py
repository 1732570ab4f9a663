"""Known-answer tests of the robustness building blocks: TextAttack's metric definitions on hand-made
results, intervals over seeds, and words of every script as spans into the original text."""

import math

import pytest

from xstilts.robustness.metrics import AttackResult, attack_metrics, over_seeds
from xstilts.robustness.words import replace_words, word_spans, words_of


def test_attack_metrics_follow_textattacks_definitions():
    results = [
        AttackResult("successful", queries=12, words=10, words_changed=2),
        AttackResult("successful", queries=30, words=4, words_changed=1),
        AttackResult("failed", queries=50, words=8),
        AttackResult("skipped", queries=1, words=5),  # already wrong: not counted in queries
        AttackResult("skipped", queries=1, words=6),
    ]
    found = attack_metrics(results)
    assert found["clean_accuracy"] == pytest.approx(3 / 5)
    assert found["accuracy_under_attack"] == pytest.approx(1 / 5)
    assert found["attack_success_rate"] == pytest.approx(2 / 3)
    assert found["average_queries"] == pytest.approx((12 + 30 + 50) / 3)
    assert found["words_perturbed"] == pytest.approx((0.2 + 0.25) / 2)
    assert found["examples"] == 5 and found["skipped"] == 2


def test_attack_metrics_without_attacked_examples_are_nan_not_a_crash():
    found = attack_metrics([AttackResult("skipped", queries=1, words=0)])
    assert found["clean_accuracy"] == 0.0
    assert math.isnan(found["attack_success_rate"]) and math.isnan(found["average_queries"])
    assert math.isnan(attack_metrics([])["clean_accuracy"])
    with pytest.raises(ValueError, match="successful, failed or skipped"):
        AttackResult("won", queries=1, words=1)


def test_over_seeds_is_the_mean_with_a_student_t_interval():
    spread = over_seeds([0.5, 0.6, 0.7])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * sample sd / sqrt(n)
    assert spread.mean == pytest.approx(0.6) and spread.seeds == 3
    assert (spread.low, spread.high) == pytest.approx((0.6 - half, 0.6 + half))
    single = over_seeds([0.4, float("nan")])
    assert single.mean == 0.4 and single.seeds == 1 and math.isnan(single.low)


def test_words_keep_combining_marks_and_split_unspaced_scripts():
    hindi = "नमस्ते दुनिया!"  # virama and vowel signs stay with their consonants
    assert words_of(hindi) == ["नमस्ते", "दुनिया"]
    assert words_of("我爱你, Bob.") == ["我", "爱", "你", "Bob"]
    assert words_of("l'été 2024 est-il là?") == ["l", "été", "est", "il", "là"]


def test_replacing_words_keeps_everything_between_them():
    text = "Je  suis, très content!"
    assert word_spans(text)[1] == (4, 8)
    assert replace_words(text, {1: "ich bin", 3: "froh"}) == "Je  ich bin, très froh!"
    assert replace_words(text, {}) == text
    with pytest.raises(IndexError, match="4 words"):
        replace_words(text, {7: "x"})
