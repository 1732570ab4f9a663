"""Extractive (span) QA: question/context windows for the encoder, and answer text back from logits.

Encoding: the question comes first and the context second; a context longer than the window is split
into overlapping windows (`doc_stride` tokens shared by neighbours), only the context is ever truncated.
A training window is labelled with the token positions of the answer's first and last tokens, or with
the <s> position when the window does not hold the whole answer or the question has none (the SQuAD 2.0
convention). An evaluation window keeps its example's index and, for every context token, the character
span it covers in the original context string (None for question and special tokens).

Decoding: for each example the best span over all its windows, among the `n_best` highest start and end
logits of context tokens, with end >= start and at most `max_answer_tokens` tokens; its text is cut from
the original context. With no-answer questions allowed, the null score is start + end logit at <s>
(the lowest over the windows) and "" is predicted when it beats the best span by more than a threshold.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

DOC_STRIDE = 128
MAX_QUERY_TOKENS = 64
N_BEST = 20
MAX_ANSWER_TOKENS = 30

Offsets = list[tuple[int, int] | None]


def window_sizes(tokenizer, max_length: int, doc_stride: int, max_query_tokens: int) -> tuple[int, int]:
    """(question token cap, stride) that leave every window room for context.

    The tokenizer requires the stride to be smaller than the room left for the context, so short windows
    (a test model's 128 tokens) get a proportionally smaller question cap and stride; at the usual 384
    tokens the usual 64 and 128 come out unchanged.
    """
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    query_cap = max(1, min(max_query_tokens, max_length // 4))
    room = max_length - query_cap - specials
    if room < 2:
        raise ValueError(f"max_length {max_length} leaves no room for a context window")
    return query_cap, max(0, min(doc_stride, room // 2))


def _cap_questions(questions: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Questions cut after `max_tokens` tokens (the original SQuAD recipe's max_query_length)."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        question if len(offsets) <= max_tokens else question[: offsets[max_tokens - 1][1]]
        for question, offsets in zip(questions, enc["offset_mapping"], strict=True)
    ]


def answer_chars(example: dict) -> tuple[int, int] | None:
    """Character span of the first gold answer in the context, or None for a question without one.

    An `answer_start` that does not point at the answer text (a known blemish of some releases) is moved
    to the nearest occurrence of the text, when there is one.
    """
    texts, starts = example["answers"]["text"], example["answers"]["answer_start"]
    if not texts:
        return None
    text, start, context = texts[0], int(starts[0]), example["context"]
    if context[start : start + len(text)] != text:
        found = [m.start() for m in re.finditer(re.escape(text), context)]
        if found:
            start = min(found, key=lambda position: abs(position - start))
    return start, start + len(text)


def answer_tokens(chars: tuple[int, int], offsets: Offsets) -> tuple[int, int] | None:
    """First and last context token of the character span `chars`; None unless the window holds it all."""
    context = [i for i, span in enumerate(offsets) if span is not None]
    if not context:
        return None
    start_char, end_char = chars
    if offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return None
    first = next(i for i in context if offsets[i][1] > start_char)
    last = next(i for i in reversed(context) if offsets[i][0] < end_char)
    return (first, last) if last >= first else None


def encode_span_qa(
    examples: list[dict],
    tokenizer,
    max_length: int,
    *,
    for_training: bool,
    doc_stride: int = DOC_STRIDE,
    max_query_tokens: int = MAX_QUERY_TOKENS,
) -> list[dict]:
    """Windows of every example (see the module docstring); unpadded."""
    if not examples:
        return []
    query_cap, stride = window_sizes(tokenizer, max_length, doc_stride, max_query_tokens)
    questions = _cap_questions([ex["question"].lstrip() for ex in examples], tokenizer, query_cap)
    enc = tokenizer(
        questions,
        [ex["context"] for ex in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    answers = [answer_chars(ex) for ex in examples] if for_training else None
    features = []
    for row, ids in enumerate(enc["input_ids"]):
        example_index = enc["overflow_to_sample_mapping"][row]
        offsets = [
            (int(span[0]), int(span[1])) if sequence == 1 else None
            for span, sequence in zip(enc["offset_mapping"][row], enc.sequence_ids(row), strict=True)
        ]
        cls_index = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        feature = {
            "input_ids": ids,
            "attention_mask": enc["attention_mask"][row],
            "example_index": example_index,
            "cls_index": cls_index,
        }
        if for_training:
            chars = answers[example_index]
            span = answer_tokens(chars, offsets) if chars is not None else None
            feature["start_positions"], feature["end_positions"] = span or (cls_index, cls_index)
            feature["answer_in_window"] = span is not None
        else:
            feature["offsets"] = offsets
        features.append(feature)
    return features


def _best_span(
    start: np.ndarray, end: np.ndarray, context: np.ndarray, n_best: int, max_answer_tokens: int
) -> tuple[float, int, int] | None:
    """(score, first token, last token) of the best valid span of one window, None if there is none."""
    if context.size == 0:
        return None
    starts = context[np.argsort(-start[context], kind="stable")[:n_best]]
    ends = context[np.argsort(-end[context], kind="stable")[:n_best]]
    length = ends[None, :] - starts[:, None]
    scores = np.where(
        (length >= 0) & (length < max_answer_tokens), start[starts][:, None] + end[ends][None, :], -np.inf
    )
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    if not np.isfinite(scores[i, j]):
        return None
    return float(scores[i, j]), int(starts[i]), int(ends[j])


def decode_span_qa(
    logits: Sequence[np.ndarray],
    features: list[dict],
    examples: list[dict],
    *,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    allow_no_answer: bool = False,
    null_threshold: float = 0.0,
) -> dict[str, str]:
    """{example id: answer text} from per-window (length, 2) start/end logits (see the module docstring)."""
    if len(logits) != len(features):
        raise ValueError(f"{len(logits)} logit rows for {len(features)} windows")
    windows: dict[int, list[int]] = defaultdict(list)
    for row, feature in enumerate(features):
        windows[feature["example_index"]].append(row)
    predictions: dict[str, str] = {}
    for index, example in enumerate(examples):
        best: tuple[float, int, int] | None = None
        null_score = np.inf
        for row in windows.get(index, []):
            scores, offsets = np.asarray(logits[row], dtype=np.float64), features[row]["offsets"]
            if scores.shape != (len(offsets), 2):
                raise ValueError(f"window {row}: logits of shape {scores.shape} for {len(offsets)} tokens")
            start, end = scores[:, 0], scores[:, 1]
            cls = features[row]["cls_index"]
            null_score = min(null_score, start[cls] + end[cls])
            context = np.array([i for i, span in enumerate(offsets) if span is not None], dtype=np.int64)
            span = _best_span(start, end, context, n_best, max_answer_tokens)
            if span is not None and (best is None or span[0] > best[0]):
                best = (span[0], offsets[span[1]][0], offsets[span[2]][1])
        text = example["context"][best[1] : best[2]].strip() if best is not None else ""
        if allow_no_answer and (best is None or null_score > best[0] + null_threshold):
            text = ""
        key = str(example["id"])
        if key in predictions:
            raise ValueError(f"question id {key!r} occurs more than once")
        predictions[key] = text
    return predictions


def gold_answers(examples: list[dict]) -> dict[str, list[str]]:
    """{example id: every gold answer text} (an empty list: no answer)."""
    gold: dict[str, list[str]] = {}
    for example in examples:
        key = str(example["id"])
        if key in gold:
            raise ValueError(f"question id {key!r} occurs more than once")
        gold[key] = list(example["answers"]["text"])
    return gold


def windows_note(features: list[dict]) -> str | None:
    """How contexts were split, and how many training windows point at <s> for want of the answer."""
    if not features:
        return None
    questions = len({f["example_index"] for f in features})
    note = f"{len(features)} windows for {questions} questions"
    if "answer_in_window" in features[0]:
        missing = sum(not f["answer_in_window"] for f in features)
        note += f"; {missing} training windows lack an answer and point at <s>"
    return note
