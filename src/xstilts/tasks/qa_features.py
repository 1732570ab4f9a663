"""Extractive (span) QA: question/context windows for the encoder, and answer text back from logits.

The rules are those of the reference implementation: XTREME's `third_party/processors/squad.py`
(`squad_convert_example_to_features`, `_new_check_is_max_context`) and jiant's
`jiant/tasks/lib/templates/squad_style/core.py` (`SquadExample.to_feature_list`), decoded as in jiant's
`squad_style/utils.py` (`compute_predictions_logits_v2`, adapted from the transformers
`compute_predictions_logits` that XTREME's `third_party/run_squad.py` calls).

Encoding: the question (its first `max_query_tokens` tokens) comes first and the context second; only the
context is ever split. `doc_stride` is the STEP between the first context tokens of neighbouring windows
(not the number of tokens they share, which is what a Hugging Face tokenizer's `stride` means): window k
holds context tokens k * doc_stride ... k * doc_stride + room - 1, where room = max_length - question
tokens - special tokens, and windows are added until one reaches the end of the context. At 384 tokens,
a 64-token cap and a step of 128, neighbours share room - 128 tokens (188 to 251 with XLM-R's four special
tokens, by question length).
An empty context still gets one window (the reference makes none), so every question has a prediction.
A training window is labelled with the token positions of the answer's first and last tokens, or with
the <s> position when the window does not hold the whole answer or the question has none (the SQuAD 2.0
convention). An evaluation window keeps its example's index, for every token the character span it covers
in the original context string (None for question and special tokens) and, in `max_context`, whether
this window is the token's "maximal context" window: among the windows holding a context token, the one
with the highest min(tokens left of it, tokens right of it, within the window) + 0.01 * window length,
the first such window on a tie.

Decoding: for each example the best span over all its windows. In each window the `n_best` highest start
and the `n_best` highest end logits over all its tokens are candidates; a pair counts when both tokens are
context tokens, the start token has its maximal context in this window (the end token is not checked, as
in the reference), end >= start and end - start + 1 <= `max_answer_tokens`. The pair with the highest
start + end logit wins (the earliest window, then start and end rank, on a tie); its text is cut from the
original context. With no-answer questions allowed, the null score is start + end logit at <s> (the
lowest over the windows) and "" is predicted when it beats the best span by more than a threshold.
One difference is left: the reference ranks the n-best over the padded 384 positions, padding included;
here the logits of a window stop at its last token.
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
    """(question token cap, step between window starts) that leave every window room for context.

    The step must not exceed the context room of a window, or context tokens would fall between windows,
    so short windows (a test model's 64 or 128 tokens) get a proportionally smaller question cap and a
    step of at most half the smallest room; at the usual 384 tokens the usual 64 and 128 come out
    unchanged (the smallest room is then 384 - 64 - 4 = 316 for XLM-R).
    """
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    query_cap = max(1, min(max_query_tokens, max_length // 4))
    room = max_length - query_cap - specials
    if room < 2:
        raise ValueError(f"max_length {max_length} leaves no room for a context window")
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be at least 1, not {doc_stride}")
    return query_cap, min(doc_stride, room // 2)


def window_starts(context_tokens: int, room: int, step: int) -> list[int]:
    """First context token of each window: 0, step, 2 * step, ... until a window reaches the end.

    As in XTREME's `squad_convert_example_to_features`: window k covers context tokens k * step up to
    k * step + room - 1 (fewer at the end), and no window follows one that holds the last token.
    """
    if not 1 <= step <= room:
        raise ValueError(f"a step of {step} between windows of {room} context tokens")
    starts = [0]
    while starts[-1] + room < context_tokens:
        starts.append(starts[-1] + step)
    return starts


def max_context_windows(context_tokens: int, starts: Sequence[int], room: int) -> np.ndarray:
    """For each context token, the index of the window in which it has maximal context.

    The reference's `_new_check_is_max_context` (XTREME `third_party/processors/squad.py`, jiant
    `squad_style/core.py`): a window scores min(tokens to the left, tokens to the right, within the window)
    + 0.01 * the window's length, and the first of the highest-scoring windows wins.
    """
    first = np.asarray(starts, dtype=np.int64)[:, None]
    length = np.minimum(room, context_tokens - first)
    position = np.arange(context_tokens, dtype=np.int64)[None, :]
    left, right = position - first, first + length - 1 - position
    score = np.where((left >= 0) & (right >= 0), np.minimum(left, right) + 0.01 * length, -np.inf)
    return np.argmax(score, axis=0)


def _pair_template(tokenizer) -> tuple[list[int], list[int], list[int]]:
    """Special token ids before the question, between question and context, and after the context."""
    enc = tokenizer("question", "context")
    ids, sequence = enc["input_ids"], enc.sequence_ids(0)
    question = [i for i, s in enumerate(sequence) if s == 0]
    context = [i for i, s in enumerate(sequence) if s == 1]
    if not question or not context or context[0] < question[-1]:
        raise ValueError("cannot tell where the tokenizer puts the question and the context of a pair")
    parts = ids[: question[0]], ids[question[-1] + 1 : context[0]], ids[context[-1] + 1 :]
    added = sum(len(part) for part in parts)
    if added != tokenizer.num_special_tokens_to_add(pair=True) or (
        len(question) + len(context) + added != len(ids)
    ):
        raise ValueError("the tokenizer adds tokens inside the question or the context of a pair")
    return parts


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
    """Windows of every example (see the module docstring); unpadded.

    Questions and contexts are tokenized once each, in two batched calls (a context shared by several
    questions, as in SQuAD, only once), and the windows are cut from these token ids.
    """
    if not examples:
        return []
    query_cap, step = window_sizes(tokenizer, max_length, doc_stride, max_query_tokens)
    before, between, after = _pair_template(tokenizer)
    cls_index = before.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in before else 0
    questions = tokenizer(
        [ex["question"].lstrip() for ex in examples], add_special_tokens=False, verbose=False
    )["input_ids"]
    context_index: dict[str, int] = {}
    for ex in examples:
        context_index.setdefault(ex["context"], len(context_index))
    contexts = tokenizer(
        list(context_index), add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    answers = [answer_chars(ex) for ex in examples] if for_training else None
    features = []
    for example_index, ex in enumerate(examples):
        question = questions[example_index][:query_cap]
        c = context_index[ex["context"]]
        ids = contexts["input_ids"][c]
        offsets: list[tuple[int, int]] = contexts["offset_mapping"][c]
        room = max_length - len(question) - len(before) - len(between) - len(after)
        starts = window_starts(len(ids), room, step)
        head = [*before, *question, *between]
        owner = max_context_windows(len(ids), starts, room) if not for_training else None
        for window, first in enumerate(starts):
            last = min(first + room, len(ids))
            input_ids = head + ids[first:last] + after
            feature = {
                "input_ids": input_ids,
                "attention_mask": [1] * len(input_ids),
                "example_index": example_index,
                "cls_index": cls_index,
            }
            if for_training:
                chars = answers[example_index]
                span = answer_tokens(chars, offsets[first:last]) if chars is not None else None
                if span is not None:
                    span = (span[0] + len(head), span[1] + len(head))
                feature["start_positions"], feature["end_positions"] = span or (cls_index, cls_index)
                feature["answer_in_window"] = span is not None
            else:
                feature["offsets"] = [None] * len(head) + offsets[first:last] + [None] * len(after)
                feature["max_context"] = (
                    [False] * len(head) + (owner[first:last] == window).tolist() + [False] * len(after)
                )
            features.append(feature)
    return features


def _best_span(
    start: np.ndarray,
    end: np.ndarray,
    context: np.ndarray,
    max_context: np.ndarray,
    n_best: int,
    max_answer_tokens: int,
) -> tuple[float, int, int] | None:
    """(score, first token, last token) of the best valid span of one window, None if there is none.

    As jiant's `compute_predictions_logits_v2`: the `n_best` highest start and end logits over the whole
    window are candidates; a start must be a context token with its maximal context here, an end a
    context token at or after the start, and the span at most `max_answer_tokens` tokens long.
    """
    starts = np.argsort(-start, kind="stable")[:n_best]
    ends = np.argsort(-end, kind="stable")[:n_best]
    starts, ends = starts[context[starts] & max_context[starts]], ends[context[ends]]
    if starts.size == 0 or ends.size == 0:
        return None
    length = ends[None, :] - starts[:, None] + 1
    scores = np.where(
        (length >= 1) & (length <= max_answer_tokens), start[starts][:, None] + end[ends][None, :], -np.inf
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
    """{example id: answer text} from per-window (length, 2) start/end logits (see the module docstring).

    The features are evaluation windows of `encode_span_qa` (with `offsets` and `max_context`).
    """
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
            max_context = np.asarray(features[row]["max_context"], dtype=bool)
            if scores.shape != (len(offsets), 2) or max_context.shape != (len(offsets),):
                raise ValueError(
                    f"window {row}: logits of shape {scores.shape} and {max_context.size} max-context "
                    f"flags for {len(offsets)} tokens"
                )
            start, end = scores[:, 0], scores[:, 1]
            cls = features[row]["cls_index"]
            null_score = min(null_score, start[cls] + end[cls])
            context = np.array([span is not None for span in offsets], dtype=bool)
            span = _best_span(start, end, context, max_context, n_best, max_answer_tokens)
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
