"""The ranking kind (LAReQA, Mewsli-X): pairs and problems as features, the in-batch softmax, rankings by
cosine; problems assembled from the adapters' parts; the texts built as XTREME-R's baselines build them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xstilts.errors import XstiltsError
from xstilts.evaluate.metrics import get_metric
from xstilts.tasks import ranking_text
from xstilts.tasks.kinds import get_kind, sequence_lengths
from xstilts.tasks.ranking import merge_parts, training_pairs
from xstilts.tasks.registry import get_task
from xstilts.tasks.sentence_breaks import sentence_breaks
from xstilts.tasks.spec import TaskSpec

KIND = get_kind("ranking")
SPEC = TaskSpec(name="rank", kind="ranking", source="datasets", languages=("en",), metric="map_at_20")
PROBLEM = {
    "id": "de",
    "language": "de",
    "queries": {"q1": "Wer baute die Burg?", "q2": "Was ist heute dort?"},
    "candidates": {"c1": "Herzog Heinrich baute die Burg.", "c2": "Heute ist dort ein Museum.", "c3": "x"},
    "relevant": {"q1": ["c1"], "q2": ["c2", "c3"]},
}


@pytest.fixture(scope="module")
def tiny():
    """The tiny model with a ranking head, and its tokenizer (loading the tokenizer dominates: once)."""
    from xstilts.models.checkpoint import build_model

    model, tokenizer, _ = build_model("tiny-random-xlmr", {"rank": KIND.head(SPEC)}, seed=0)
    return model, tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return tiny[1]


def _batch(n: int) -> dict:
    return {"input_ids": torch.zeros(n, 2, 3, dtype=torch.long)}


def test_the_kind_is_a_trained_dual_encoder_with_a_fixed_embedding_head():
    spec = get_task("lareqa")
    assert KIND.trains and KIND.encoder_scorer is None and KIND.problem_parts
    assert KIND.head(spec).outputs == 256 and KIND.head(spec).level == "sequence"
    assert KIND.prediction_format == "rankings" and KIND.attack_fields == ()
    assert KIND.substitution_fields == ("query",) and KIND.training_keys == ()


def test_pairs_are_two_rows_and_collate_to_batch_by_two_by_length(tokenizer):
    pairs = [
        {"id": "a", "query": "Who built it?", "candidate": "Duke Henry built the castle in 1120."},
        {"id": "b", "query": "A much longer question about the castle?", "candidate": "A museum."},
    ]
    features = KIND.encode(pairs, tokenizer, 32, for_training=True)
    assert [len(f["input_ids"]) for f in features] == [2, 2]
    assert tokenizer.decode(features[0]["input_ids"][0], skip_special_tokens=True) == "Who built it?"
    batch = KIND.collate(features, tokenizer)
    assert batch["input_ids"].shape == (2, 2, max(sequence_lengths(features)))
    assert batch["attention_mask"][1, 1].sum() == len(features[1]["input_ids"][1])  # the short candidate
    assert set(batch) == {"input_ids", "attention_mask"}


def test_problems_are_one_feature_per_query_then_candidate(tokenizer):
    features = KIND.encode([PROBLEM], tokenizer, 32)
    assert [(f["side"], f["key"]) for f in features] == [
        ("query", "q1"), ("query", "q2"), ("candidate", "c1"), ("candidate", "c2"), ("candidate", "c3"),
    ]  # fmt: skip
    assert KIND.collate(features, tokenizer)["input_ids"].shape[0] == 5
    assert KIND.encoding_note(features) == "2 queries ranked against 3 candidates"
    assert "reach the maximum length" in KIND.encoding_note(KIND.encode([PROBLEM], tokenizer, 4))
    with pytest.raises(XstiltsError, match="pairs, not on problems"):
        KIND.encode([PROBLEM], tokenizer, 32, for_training=True)


def test_loss_is_cross_entropy_of_cosines_over_temperature_with_positives_on_the_diagonal():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)  # 3 pairs, flattened to rows by the model: q0 c0 q1 c1 q2 c2
    q, c = F.normalize(logits[0::2], dim=-1), F.normalize(logits[1::2], dim=-1)
    scores = q @ c.T / 0.01
    expected = -torch.log_softmax(scores, dim=-1).diagonal().mean()
    assert KIND.loss(logits, _batch(3)).item() == pytest.approx(expected.item(), rel=1e-5)
    log_probs = KIND.output_log_probs(logits, _batch(3))
    assert log_probs.shape == (3, 3) and torch.allclose(log_probs.exp().sum(-1), torch.ones(3))
    # each query pointing at its own candidate only: the loss vanishes
    aligned = torch.eye(3).repeat_interleave(2, dim=0)
    assert KIND.loss(aligned, _batch(3)).item() < 1e-6
    assert KIND.loss(aligned[[0, 3, 2, 5, 4, 1]], _batch(3)).item() > 50  # every query on a wrong one
    with pytest.raises(XstiltsError, match="pairs"):
        KIND.loss(torch.zeros(3, 5), {"input_ids": torch.zeros(3, 4, dtype=torch.long)})


def test_decode_ranks_each_problems_candidates_by_cosine_and_gold_lists_the_relevant(tokenizer):
    features = KIND.encode([PROBLEM], tokenizer, 32)
    vectors = {
        "q1": [1.0, 0.0], "q2": [0.0, 1.0],
        "c1": [2.0, 0.1], "c2": [0.1, 3.0], "c3": [-1.0, 0.5],
    }  # fmt: skip
    logits = np.array([vectors[f["key"]] for f in features])
    rankings = KIND.decode(logits, features, [PROBLEM], None)
    assert rankings == {"q1": ["c1", "c2", "c3"], "q2": ["c2", "c3", "c1"]}
    gold = KIND.gold([PROBLEM], None)
    assert gold == {"q1": ["c1"], "q2": ["c2", "c3"]}
    assert get_metric("map_at_20")(rankings, gold) == pytest.approx(1.0)
    assert KIND.top_k == 20


def test_a_ranking_keeps_the_top_20_of_a_larger_pool(tokenizer):
    problem = {
        "id": "en",
        "queries": {"q": "?"},
        "candidates": {f"c{i}": str(i) for i in range(30)},
        "relevant": {"q": ["c29"]},
    }
    features = KIND.encode([problem], tokenizer, 8)
    logits = np.array([[1.0, 0.0] if f["side"] == "query" else [1.0, int(f["key"][1:])] for f in features])
    ranking = KIND.decode(logits, features, [problem], None)["q"]
    assert ranking == [f"c{i}" for i in range(20)]  # the most aligned first; c29 is out of the top 20
    assert get_metric("map_at_20")({"q": ranking}, KIND.gold([problem], None)) == 0.0


# ------------------------------------------------------------------------------------------- parts


def _part(lang, queries=None, candidates=None, relevant=None, answers=None):
    return {
        "language": lang,
        "queries": queries or {},
        "candidates": candidates or {},
        "relevant": relevant or {},
        "answers": answers or {},
    }


LAREQA_PARTS = [  # one question in three languages; each language's sentence answers the shared id
    _part("en", {"x_en": "Who?"}, {"en_1": "Henry.", "en_2": "Clocks."}, {"x_en": ["x"]}, {"x": ["en_1"]}),
    _part("de", {"x_de": "Wer?"}, {"de_1": "Heinrich.", "de_2": "Uhren."}, {"x_de": ["x"]}, {"x": ["de_1"]}),
    _part("zh", {"x_zh": "谁?"}, {"zh_1": "亨利。"}, {"x_zh": ["x"]}, {"x": ["zh_1"]}),
]


def test_a_problem_takes_its_languages_queries_and_every_languages_candidates():
    problem = merge_parts(LAREQA_PARTS, "de", limit=None, seed=0, where="t")
    assert problem["queries"] == {"x_de": "Wer?"} and problem["id"] == "de"
    assert sorted(problem["candidates"]) == ["de_1", "de_2", "en_1", "en_2", "zh_1"]
    assert problem["relevant"] == {"x_de": ["en_1", "de_1", "zh_1"]}  # every translation of the answer


def test_limit_caps_the_queries_never_the_pool():
    parts = [
        _part("en", {f"q{i}": "?"}, {f"c{i}": "!"}, {f"q{i}": [f"k{i}"]}, {f"k{i}": [f"c{i}"]})
        for i in range(6)
    ]
    problem = merge_parts(parts, "en", limit=2, seed=3, where="t")
    assert len(problem["queries"]) == 2 and len(problem["candidates"]) == 6
    assert set(problem["relevant"]) == set(problem["queries"])
    assert problem == merge_parts(parts, "en", limit=2, seed=3, where="t")  # seeded
    assert merge_parts(parts, "en", limit=None, seed=0, where="t")["queries"].keys() == {
        f"q{i}" for i in range(6)
    }


def test_merging_refuses_a_query_without_a_relevant_candidate_and_conflicting_texts():
    lonely = _part("en", {"q": "?"}, {}, {"q": ["Q42"]})
    with pytest.raises(XstiltsError, match=r"task t: query 'q' has no relevant candidate.*'Q42'"):
        merge_parts([lonely], "en", limit=None, seed=0, where="task t")
    clash = [_part("en", candidates={"c": "a"}), _part("de", candidates={"c": "b"})]
    with pytest.raises(XstiltsError, match="candidate id 'c' appears with two different texts"):
        merge_parts([*clash, LAREQA_PARTS[0]], "en", limit=None, seed=0, where="t")
    with pytest.raises(XstiltsError, match="no queries in this language"):
        merge_parts(LAREQA_PARTS, "fr", limit=None, seed=0, where="t")


def test_training_pairs_join_each_query_with_its_own_parts_answer():
    assert training_pairs(LAREQA_PARTS[1]) == [{"id": "x_de", "query": "Wer?", "candidate": "Heinrich."}]
    mention = _part(
        "en", {"m": "Berlin: in { Berlin }"}, {"Q64": "Berlin is a city."}, {"m": ["Q64"]}, {"Q64": ["Q64"]}
    )
    assert training_pairs(mention) == [
        {"id": "m", "query": "Berlin: in { Berlin }", "candidate": "Berlin is a city."}
    ]
    assert training_pairs(_part("en", {"m": "?"}, {}, {"m": ["Q1"]})) == []  # its answer is elsewhere


# ------------------------------------------------------------------------------------------- texts


def test_a_mention_query_marks_the_span_in_its_sentence_and_repeats_it_first():
    text = "Old news.\nThe verdict for Smith {Jr} came in.  Later text."
    sentences = [(0, 9), (10, 46), (48, 59)]
    start = text.index("Smith")
    query = ranking_text.mention_query(text, sentences, start, start + 5)
    assert query == "Smith: The verdict for { Smith } (Jr) came in."  # braces escaped, one sentence only
    with pytest.raises(ranking_text.SpanError, match="not inside one sentence"):
        ranking_text.mention_query(text, sentences, 5, 12)


def test_entity_and_lareqa_candidate_texts():
    description = "Berlin is a city.\nIt lies on the Spree.  Unused tail."
    assert (
        ranking_text.entity_text(description, [(0, 17), (18, 40)])
        == "Berlin is a city. It lies on the Spree."
    )
    assert ranking_text.lareqa_candidate("B.", "A.\nB.") == "B.A.B."  # sentence then paragraph, no newline
    with pytest.raises(ranking_text.SpanError, match=r"span \[3, 2\)"):
        ranking_text.check_span(3, 2, 10, "field 'x'")


def test_sentence_breaks_follow_xtremes_squad_rules_at_original_offsets():
    text = (
        "Dr. Smith met J. R. R. Tolkien in Oxford.  He left.\nIn 1950 the U.S. 101st moved. It rained? Yes."
    )
    sentences = [text[s:e] for s, e in sentence_breaks(text)]
    assert sentences == [
        "Dr. Smith met J. R. R. Tolkien in Oxford.",
        "He left.",
        "In 1950 the U.S. 101st moved.",
        "It rained?",
        "Yes.",
    ]
    lower = "no break here. lower case follows"
    assert sentence_breaks(lower) == [(0, len(lower))]
    assert sentence_breaks("   ") == []


class _Accelerator:
    """What a strategy asks of accelerate: a plain backward."""

    @staticmethod
    def backward(loss):
        loss.backward()


def test_embedding_space_strategies_train_a_step_of_pairs(tiny):
    """FGM (a perturbation of the 2 x batch rows) and SMART (which compares `output_log_probs`) on a batch
    of ranking pairs; PGD and FreeLB perturb the same rows as FGM."""
    from xstilts.config import FGMConfig, SMARTConfig
    from xstilts.train.adversarial import build_strategy
    from xstilts.train.loop import TaskStream

    model, tokenizer = tiny
    pairs = [{"id": str(i), "query": f"question {i}?", "candidate": f"the answer is {i}"} for i in range(3)]
    stream = TaskStream(SPEC, KIND.encode(pairs, tokenizer, 16, for_training=True), 3)
    batch = KIND.collate(stream.features, tokenizer)
    for config in (FGMConfig(strategy="fgm"), SMARTConfig(strategy="smart", bregman=1.0)):
        model.zero_grad(set_to_none=True)
        strategy = build_strategy(config, tokenizer.all_special_ids, 0)
        loss = strategy.loss_and_backward(_Accelerator(), model, stream, batch, 1.0)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert torch.isfinite(loss) and grads, config.strategy
        assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().max() > 0 for g in grads)
