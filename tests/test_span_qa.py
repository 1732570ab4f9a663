"""Span QA: windows a doc stride apart, max-context tokens, answer positions, n-best decoding, training."""

import unicodedata

import numpy as np
import pytest
from transformers import AutoTokenizer

from xstilts.config import PhaseConfig
from xstilts.evaluate.task_eval import evaluate_task
from xstilts.models.checkpoint import build_model
from xstilts.models.heads import HeadSpec
from xstilts.models.tiny import tiny_checkpoint_dir
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.qa_features import answer_tokens, decode_span_qa, window_sizes
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import freeze_word_embeddings, train_task

KIND = get_kind("span_qa")


def qa(qid: str, question: str, context: str, *answers: str) -> dict:
    return {
        "id": qid,
        "question": question,
        "context": context,
        "answers": {"text": list(answers), "answer_start": [context.index(a) for a in answers]},
    }


def spec(metric: str = "squad_f1", extra=("squad_em",)) -> TaskSpec:
    return TaskSpec(
        name="toy-qa",
        kind="span_qa",
        source="bible",
        languages=("en", "de", "zh"),
        metric=metric,
        extra_metrics=extra,
    )


FILLER = " ".join(f"Sentence {i} is about nothing in particular." for i in range(25))
LONG = qa(
    "long", "Where was the treaty signed?", f"{FILLER} The treaty was signed in Vienna. {FILLER}", "Vienna"
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(tiny_checkpoint_dir())


def context_spans(feature: dict) -> list[tuple[int, int]]:
    return [span for span in feature["offsets"] if span is not None]


def test_a_long_context_is_split_into_overlapping_windows(tokenizer):
    features = KIND.encode([LONG], tokenizer, 64)
    _, step = window_sizes(tokenizer, 64, KIND.doc_stride, KIND.max_query_tokens)
    # 64 tokens: question capped at 16, a step of half the 44 tokens left (the first version of this test
    # read 22 as the number of tokens neighbours share, the tokenizer's `stride`; it is the step between
    # window starts, as in the reference, so there are now 20 windows rather than 15)
    assert len(features) == 20 and step == 22
    question = tokenizer(LONG["question"], add_special_tokens=False)["input_ids"]
    for feature in features:
        assert len(feature["input_ids"]) <= 64 and feature["example_index"] == 0
        assert feature["input_ids"][1 : 1 + len(question)] == question  # question first, never truncated
        assert feature["input_ids"][feature["cls_index"]] == tokenizer.cls_token_id
    for before, after in zip(features, features[1:], strict=False):
        # the next window starts `step` context tokens later and overlaps the rest of this one
        shared = len(context_spans(before)) - step
        assert shared > 0 and context_spans(before)[step:] == context_spans(after)[:shared]
    # together the windows cover the whole context
    assert context_spans(features[0])[0][0] == 0 and context_spans(features[-1])[-1][1] == len(
        LONG["context"]
    )


def windows_by_hand(tokenizer, question: str, context: str, max_length: int, step: int, cap: int):
    """The reference's windows, written out: <s> question </s></s> context piece </s>, pieces `step` apart.

    XTREME `third_party/processors/squad.py`, `squad_convert_example_to_features`: the question is its
    first `cap` tokens; window k holds context tokens k * step onwards, as many as fit in `max_length`;
    the last window is the first one that reaches the end of the context.
    """
    q = tokenizer(question, add_special_tokens=False)["input_ids"][:cap]
    c = tokenizer(context, add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    room = max_length - len(q) - 4  # XLM-R: <s> q </s> </s> c </s>
    windows, start = [], 0
    while True:
        windows.append([cls, *q, sep, sep, *c[start : start + room], sep])
        if start + room >= len(c):
            return windows, room
        start += step


VERY_LONG = qa(
    "very-long",
    "Where, after " + "many long and winding debates " * 12 + "was the treaty signed?",
    f"{FILLER} {FILLER} The treaty was signed in Vienna. {FILLER} {FILLER}",
    "Vienna",
)


@pytest.mark.parametrize(
    ("example", "max_length", "step", "cap"),
    # (at 64 tokens with a full 16-token question room = 2 * step, where the old reading of doc_stride as
    # the overlap happened to give the same windows; the other three cases failed under it)
    [(VERY_LONG, 384, 128, 64), (LONG, 384, 128, 64), (VERY_LONG, 64, 22, 16), (LONG, 128, 46, 32)],
)
def test_windows_are_the_reference_windows_token_by_token(tokenizer, example, max_length, step, cap):
    """doc_stride is the step between window starts: at 384 tokens neighbours share about 240 tokens."""
    assert window_sizes(tokenizer, max_length, KIND.doc_stride, KIND.max_query_tokens) == (cap, step)
    expected, room = windows_by_hand(
        tokenizer, example["question"], example["context"], max_length, step, cap
    )
    for for_training in (False, True):
        features = KIND.encode([example], tokenizer, max_length, for_training=for_training)
        assert [f["input_ids"] for f in features] == expected
        assert all(f["attention_mask"] == [1] * len(f["input_ids"]) for f in features)
    context = len(tokenizer(example["context"], add_special_tokens=False)["input_ids"])
    assert len(expected) == 1 + -(-(context - room) // step)  # 1 + ceil((context - room) / step)
    if (example, max_length) == (VERY_LONG, 384):
        # the question is capped at 64 tokens, so 316 context tokens fit and neighbours share 188;
        # the same 908 context tokens made 5 windows when 128 was taken for the overlap
        assert (context, room, len(expected)) == (908, 316, 6)


def test_max_context_flags_follow_the_reference_score(tokenizer):
    """Each context token has its maximal context in exactly one window: the first of the windows with the
    highest min(tokens left, tokens right) + 0.01 * window length (XTREME `_new_check_is_max_context`)."""
    features = KIND.encode([VERY_LONG], tokenizer, 64)
    _, step = window_sizes(tokenizer, 64, KIND.doc_stride, KIND.max_query_tokens)
    spans = [(k * step, len(context_spans(f))) for k, f in enumerate(features)]  # (first token, length)
    owners: dict[int, list[int]] = {}
    for k, feature in enumerate(features):
        positions = [i for i, span in enumerate(feature["offsets"]) if span is not None]
        assert not any(flag for i, flag in enumerate(feature["max_context"]) if i not in positions)
        for j, i in enumerate(positions):
            token = spans[k][0] + j
            scores = [
                min(token - first, first + length - 1 - token) + 0.01 * length
                for first, length in spans
                if first <= token < first + length
            ]
            inside = [w for w, (first, length) in enumerate(spans) if first <= token < first + length]
            best = inside[scores.index(max(scores))]
            assert feature["max_context"][i] == (best == k)
            if feature["max_context"][i]:
                owners.setdefault(token, []).append(k)
    context = len(tokenizer(VERY_LONG["context"], add_special_tokens=False)["input_ids"])
    assert sorted(owners) == list(range(context)) and all(len(w) == 1 for w in owners.values())


def test_a_start_is_only_read_from_the_window_where_it_has_max_context(tokenizer):
    example = LONG
    first, second = KIND.encode([example], tokenizer, 64)[:2]
    _, step = window_sizes(tokenizer, 64, KIND.doc_stride, KIND.max_query_tokens)
    in_first = [i for i, span in enumerate(first["offsets"]) if span is not None]
    in_second = [i for i, span in enumerate(second["offsets"]) if span is not None]
    # the second-to-last context token of the first window is deep inside the second one
    p = in_first[-2]
    q = in_second[in_first.index(p) - step]
    assert first["offsets"][p] == second["offsets"][q]
    assert not first["max_context"][p] and second["max_context"][q]
    token_text = example["context"][slice(*first["offsets"][p])].strip()
    two_tokens = example["context"][first["offsets"][p][0] : first["offsets"][p + 1][1]].strip()
    # the first window alone would answer tokens p..p+1 with 9 + 9; the second one answers token p with 3 + 3
    logits = [logits_for(first, {p: 9.0}, {p + 1: 9.0}), logits_for(second, {q: 3.0}, {q: 3.0})]
    examples = [example]
    assert decode_span_qa(logits, [first, second], examples)["long"] == token_text != two_tokens
    # without the rule (every context token counted as max context) the first window would win
    everywhere = [{**f, "max_context": [s is not None for s in f["offsets"]]} for f in (first, second)]
    assert decode_span_qa(logits, everywhere, examples)["long"] == two_tokens


def test_only_the_start_needs_max_context_not_the_end(tokenizer):
    """As the reference (`compute_predictions_logits`): `token_is_max_context` is looked up for the start
    index only, so a span may end on a token whose max-context window is another one."""
    first, second = KIND.encode([LONG], tokenizer, 64)[:2]
    positions = [i for i, span in enumerate(first["offsets"]) if span is not None]
    owned = [i for i in positions if first["max_context"][i]]
    start, end = owned[-1], positions[-1]  # the last token of the first window belongs to the second
    assert not first["max_context"][end] and end - start + 1 <= KIND.max_answer_tokens
    logits = [logits_for(first, {start: 5.0}, {end: 5.0}), logits_for(second, {}, {})]
    expected = LONG["context"][first["offsets"][start][0] : first["offsets"][end][1]].strip()
    assert decode_span_qa(logits, [first, second], [LONG])["long"] == expected


def test_the_answer_span_maps_back_to_exactly_the_answer_text(tokenizer):
    examples = [
        LONG,
        qa("de", "Wo wohnt sie?", "Sie wohnt seit Jahren in Göttingen, nahe der Uni.", "Göttingen"),
        qa("zh", "首都是哪里?", "中国的首都是北京,人口很多。", "北京"),
        qa("hi", "राजधानी क्या है?", "भारत की राजधानी नई दिल्ली है।", "नई दिल्ली"),
        qa("two", "Who came?", "Anna came first, then Ben came.", "Anna", "Anna came first"),
    ]
    train = KIND.encode(examples, tokenizer, 64, for_training=True)
    evaluation = KIND.encode(examples, tokenizer, 64)
    assert [f["example_index"] for f in train] == [f["example_index"] for f in evaluation]
    found = set()
    for t, e in zip(train, evaluation, strict=True):
        example = examples[t["example_index"]]
        if not t["answer_in_window"]:
            assert t["start_positions"] == t["end_positions"] == t["cls_index"] == 0
            continue
        start, end = e["offsets"][t["start_positions"]], e["offsets"][t["end_positions"]]
        assert example["context"][start[0] : end[1]].strip() == example["answers"]["text"][0]
        found.add(example["id"])
    assert found == {ex["id"] for ex in examples}  # the first answer is the training target
    assert sum(f["answer_in_window"] for f in train if f["example_index"] == 0) >= 1


def test_unanswerable_questions_point_at_the_first_token(tokenizer):
    example = qa("none", "Who built the bridge?", "The river is wide and the water is cold.")
    (feature,) = KIND.encode([example], tokenizer, 64, for_training=True)
    assert feature["start_positions"] == feature["end_positions"] == 0
    assert feature["input_ids"][0] == tokenizer.cls_token_id and not feature["answer_in_window"]
    assert KIND.gold([example], spec()) == {"none": []}


def test_a_question_longer_than_the_window_is_capped(tokenizer):
    example = qa("q", "why " * 200 + "?", "A short context with an answer.", "answer")
    features = KIND.encode([example], tokenizer, 48, for_training=True)
    assert all(len(f["input_ids"]) <= 48 for f in features)
    assert any(f["answer_in_window"] for f in features)


def test_a_misplaced_answer_start_moves_to_the_nearest_occurrence(tokenizer):
    example = qa("m", "What?", "cats and dogs and cats", "cats")
    example["answers"]["answer_start"] = [16]  # points at "d cat", the text is at 0 and 18
    (feature,) = KIND.encode([example], tokenizer, 64, for_training=True)
    (evaluation,) = KIND.encode([example], tokenizer, 64)
    start, end = (
        evaluation["offsets"][feature["start_positions"]],
        evaluation["offsets"][feature["end_positions"]],
    )
    assert example["context"][start[0] : end[1]] == " cats" and end[1] == 22  # the second "cats"


def test_answer_tokens_needs_the_whole_answer_inside_the_window():
    offsets = [None, None, (10, 14), (14, 20), (20, 25), None]
    assert answer_tokens((15, 20), offsets) == (3, 3)
    assert answer_tokens((11, 25), offsets) == (2, 4)
    assert answer_tokens((5, 12), offsets) is None  # starts before the window
    assert answer_tokens((22, 30), offsets) is None  # ends after it


# ------------------------------------------------------------------------------------ decoding by hand
CONTEXT = "Er zog 1990 nach São Paulo, dann nach 東京 und später nach नई दिल्ली."


def hand_feature(example_index: int, spans: list[tuple[int, int] | None]) -> dict:
    """A window: <s> and two question tokens, then context tokens with the given character spans."""
    offsets = [None, None, None, *spans, None]
    return {
        "example_index": example_index,
        "cls_index": 0,
        "offsets": offsets,
        "max_context": [span is not None for span in offsets],  # one window: all its context tokens
        "input_ids": [0] * len(offsets),
    }


def at(span: str, after: int = 0) -> tuple[int, int]:
    start = CONTEXT.index(span, after)
    return start, start + len(span)


WORDS = [at("Er"), at("zog"), at("1990"), at("nach"), at("São"), at("Paulo"), at(","), at("dann")]
WORDS_2 = [
    at("nach", 30),
    at("東京"),
    at("und"),
    at("später"),
    at("nach", 50),
    at("नई"),
    at("दिल्ली"),
    at("."),
]


def logits_for(feature: dict, start: dict[int, float], end: dict[int, float], base=-5.0) -> np.ndarray:
    scores = np.full((len(feature["offsets"]), 2), base)
    for position, value in start.items():
        scores[position, 0] = value
    for position, value in end.items():
        scores[position, 1] = value
    return scores


def decode(features, logits, examples=None, **kw):
    return decode_span_qa(logits, features, examples or [{"id": "x", "context": CONTEXT}], **kw)["x"]


def test_the_best_span_wins_across_windows_and_is_cut_from_the_original_context():
    first, second = hand_feature(0, WORDS), hand_feature(0, WORDS_2)
    # window 1: "São Paulo" (positions 7..8) scores 6; window 2: "नई दिल्ली" (8..9) scores 8
    logits = [logits_for(first, {7: 3.0}, {8: 3.0}), logits_for(second, {8: 4.0}, {9: 4.0})]
    assert decode([first, second], logits) == "नई दिल्ली"
    logits[1] = logits_for(second, {4: 2.0}, {4: 2.0})
    assert decode([first, second], logits) == "São Paulo"


def test_the_answer_is_the_original_characters_not_the_normalised_ones(tokenizer):
    """The tokenizer normalises to NFKC; offsets still index the context as given (here NFD)."""
    context = unicodedata.normalize("NFD", "Er zog nach São Paulo und später nach Zürich.")
    answer = unicodedata.normalize("NFD", "São Paulo")
    example = qa("x", "Wohin zog er?", context, answer)
    (train,) = KIND.encode([example], tokenizer, 64, for_training=True)
    (feature,) = KIND.encode([example], tokenizer, 64)
    logits = logits_for(feature, {train["start_positions"]: 5.0}, {train["end_positions"]: 5.0})
    predicted = decode_span_qa([logits], [feature], [example])["x"]
    assert predicted == answer and predicted != "São Paulo"


def test_spans_must_be_in_the_context_ordered_and_short():
    feature = hand_feature(0, WORDS)
    # the question tokens (1, 2) and <s> score highest but are never part of an answer
    logits = [logits_for(feature, {1: 9.0, 0: 9.0, 5: 1.0}, {2: 9.0, 0: 9.0, 5: 1.0})]
    assert decode([feature], logits) == "1990"
    # an end before the start is not a span: the best ordered pair wins
    logits = [logits_for(feature, {8: 5.0, 3: 1.0}, {4: 5.0, 5: 1.0})]
    assert decode([feature], logits) == "Er zog"
    # too long a span loses to a shorter, lower-scoring one
    logits = [logits_for(feature, {3: 5.0, 7: 1.0}, {10: 5.0, 8: 1.0})]
    assert decode([feature], logits) == "Er zog 1990 nach São Paulo, dann"
    assert decode([feature], logits, max_answer_tokens=4) == "São Paulo, dann"  # 7..10: 4 tokens
    assert decode([feature], logits, max_answer_tokens=3) == "São Paulo"


def test_the_n_best_are_ranked_over_the_whole_window_as_in_the_reference():
    """The reference takes the n highest start (end) logits of the window, then drops those outside the
    context: here <s> and a question token fill the two best starts, so with n_best=2 no span is left."""
    feature = hand_feature(0, WORDS)
    logits = [logits_for(feature, {0: 9.0, 1: 8.0, 5: 1.0}, {5: 1.0})]
    assert decode([feature], logits, n_best=2) == ""
    assert decode([feature], logits, n_best=3) == "1990"


def test_no_answer_when_the_null_score_beats_the_best_span_in_squad_v2_only():
    first, second = hand_feature(0, WORDS), hand_feature(0, WORDS_2)
    span = {7: 2.0}, {8: 2.0}  # best span scores 4
    logits = [
        logits_for(first, {0: 3.0, **span[0]}, {0: 3.0, **span[1]}),
        logits_for(second, {0: 2.5}, {0: 2.5}),
    ]
    # the null score is the lowest over the windows: 5.0 > 4.0
    assert decode([first, second], logits, allow_no_answer=True) == ""
    assert decode([first, second], logits, allow_no_answer=True, null_threshold=1.5) == "São Paulo"
    assert decode([first, second], logits, allow_no_answer=False) == "São Paulo"
    logits[1] = logits_for(second, {0: 1.0}, {0: 1.0})  # now the lowest null score is 2.0 < 4.0
    assert decode([first, second], logits, allow_no_answer=True) == "São Paulo"
    examples = [{"id": "x", "context": CONTEXT}]
    assert KIND.decode(logits, [first, second], examples, spec("squad_v2_f1")) == {"x": "São Paulo"}
    assert KIND.allows_no_answer(spec("squad_v2_f1")) and not KIND.allows_no_answer(spec())


def test_every_question_gets_a_prediction_and_ids_must_be_unique():
    features = [hand_feature(0, WORDS), hand_feature(1, [])]  # the second question has no context tokens
    logits = [logits_for(features[0], {3: 1.0}, {3: 1.0}), logits_for(features[1], {}, {})]
    examples = [{"id": "a", "context": CONTEXT}, {"id": "b", "context": ""}]
    assert decode_span_qa(logits, features, examples) == {"a": "Er", "b": ""}
    with pytest.raises(ValueError, match="occurs more than once"):
        decode_span_qa(logits, features, [examples[0], {"id": "a", "context": ""}])


# ------------------------------------------------------------------------------------------ end to end
TRAIN = [
    qa("e0", "Who wrote the letter?", "The letter was written by Maria in the spring.", "Maria"),
    qa("e1", "Where is the castle?", "The old castle stands on a hill above Salzburg.", "Salzburg"),
    qa("e2", "What colour is the door?", "Her house has a green door and a small garden.", "green"),
    qa("e3", "When did the war end?", "The long war finally ended in 1648 after thirty years.", "1648"),
    qa(
        "e4",
        "What does the baker sell?",
        "Every morning the baker sells fresh bread to the village.",
        "fresh bread",
    ),
    qa("e5", "Who won the race?", "After a close finish, Tomas won the race by a second.", "Tomas"),
    qa("e6", "What did the cat eat?", "The hungry cat ate the fish that was left on the table.", "the fish"),
    qa("e7", "Where did they travel?", "Last summer they travelled to Lisbon by train.", "Lisbon"),
]
TEST = {
    "de": [
        qa("d0", "Wer schrieb den Brief?", "Den Brief schrieb Maria im Frühling.", "Maria"),
        qa("d1", "Wo steht die Burg?", "Die alte Burg steht auf einem Hügel über Salzburg.", "Salzburg"),
    ],
    "zh": [
        qa("z0", "谁写了这封信?", "这封信是玛丽亚在春天写的。", "玛丽亚"),
        qa("z1", "城堡在哪里?", "古老的城堡坐落在萨尔茨堡上方的山上。", "萨尔茨堡"),
    ],
}


def test_span_qa_trains_and_evaluates_end_to_end(tokenizer):
    task = spec()
    model, tokenizer, _ = build_model("tiny-random-xlmr", {task.head_name: KIND.head(task)}, seed=0)
    assert KIND.head(task) == HeadSpec(2, "token")
    freeze_word_embeddings(model)  # keeps the test fast
    medium = qa(
        "m", "Where was it signed?", f"{FILLER[:200]} It was signed in Vienna. {FILLER[:100]}", "Vienna"
    )
    train = KIND.encode([*TRAIN, medium], tokenizer, 64, for_training=True)
    assert sum(f["example_index"] == len(TRAIN) for f in train) > 1  # the long context spans windows
    dev = KIND.encode(TRAIN, tokenizer, 64)
    before = evaluate_task(model, tokenizer, task, TRAIN, dev, 8, "en")["squad_f1"]
    phase = PhaseConfig(
        max_steps=40,
        learning_rate=5e-3,
        head_learning_rate=2e-2,
        batch_size=8,
        warmup_ratio=0.0,
        eval_every=10,
    )
    result = train_task(
        model,
        tokenizer,
        task,
        train,
        phase,
        dev_examples=TRAIN,
        dev_features=dev,
        seed=0,
        mixed_precision="no",
    )
    assert set(result.best_scores) == {"squad_f1", "squad_em"}
    # the training questions are learnt (0.82 at step 30 on CPU; 0.0 before training)
    assert before < 0.2 and result.best_dev == result.best_scores["squad_f1"] >= 0.7
    for lang, examples in TEST.items():
        features = KIND.encode(examples, tokenizer, 64)
        scores = evaluate_task(model, tokenizer, task, examples, features, 4, language=lang)
        assert set(scores) == {"squad_f1", "squad_em"}
        assert all(0.0 <= value <= 1.0 for value in scores.values())
        assert scores["squad_em"] <= scores["squad_f1"]
        mlqa = evaluate_task(model, tokenizer, task, examples, features, 4, lang, metrics=("mlqa_f1",))
        assert 0.0 <= mlqa["mlqa_f1"] <= 1.0
    unanswerable = [*TEST["de"], qa("n0", "Wer baute die Brücke?", "Der Fluss ist breit.")]
    features = KIND.encode(unanswerable, tokenizer, 64)
    v2 = evaluate_task(
        model, tokenizer, spec("squad_v2_f1", ("squad_v2_em",)), unanswerable, features, 4, "de"
    )
    assert set(v2) == {"squad_v2_f1", "squad_v2_em"} and all(0.0 <= v <= 1.0 for v in v2.values())


def test_training_features_are_required_for_training(tokenizer):
    model, tokenizer, _ = build_model("tiny-random-xlmr", {"toy-qa": HeadSpec(2, "token")})
    with pytest.raises(ValueError, match="for_training=True"):
        train_task(
            model, tokenizer, spec(), KIND.encode(TRAIN, tokenizer, 64), PhaseConfig(max_steps=1), seed=0
        )
