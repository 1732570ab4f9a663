"""Token tagging (POS, NER, supertags): one tag per word, predicted on the word's first sub-token.

Encoding tokenises the pre-split words; the first sub-token of each word carries its tag id and every
other position (later sub-tokens, special tokens) carries -100, which the loss ignores. A sentence
longer than the window is truncated: the words past it get no prediction. Decoding reads the argmax at
each word's first sub-token; a word without one (cut off, or a word the tokenizer turns into nothing)
gets the fallback tag ("O" when the tag set has it, else its first tag) and is counted.

A gold tag of -100 (a CCG dev/test supertag unseen in training, see `adapters.IGNORED_TAG`) is neither
trained nor scored: such words are left out of both the predictions and the gold sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE = -100


def encode_tagging(examples: list[dict], tokenizer, max_length: int, *, for_training: bool) -> list[dict]:
    """One feature per sentence (unpadded); evaluation features also map words to token positions."""
    if not examples:
        return []
    enc = tokenizer(
        [list(ex["tokens"]) for ex in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    features = []
    for index, example in enumerate(examples):
        words, tags = example["tokens"], example["tags"]
        if len(words) != len(tags):
            raise ValueError(f"example {example.get('id', index)!r}: {len(words)} words but {len(tags)} tags")
        ids = enc["input_ids"][index]
        labels, positions = [IGNORE] * len(ids), [-1] * len(words)
        previous = None
        for position, word in enumerate(enc.word_ids(index)):
            if word is not None and word != previous:
                labels[position] = int(tags[word])
                positions[word] = position
            previous = word
        feature = {"input_ids": ids, "attention_mask": enc["attention_mask"][index], "labels": labels}
        last_word = max((w for w, p in enumerate(positions) if p >= 0), default=-1)
        feature["words_truncated"] = len(words) - 1 - last_word
        feature["words_untokenized"] = sum(p < 0 for p in positions[: last_word + 1])
        if not for_training:
            feature["example_index"] = index
            feature["word_positions"] = positions
        features.append(feature)
    return features


def fallback_tag(labels: Sequence[str]) -> str:
    return "O" if "O" in labels else labels[0]


def decode_tagging(
    logits: Sequence[np.ndarray], features: list[dict], examples: list[dict], labels: Sequence[str]
) -> list[list[str]]:
    """Tag names per word of every example, from per-sentence (length, tags) logits."""
    if len(features) != len(examples) or len(logits) != len(features):
        raise ValueError(f"{len(logits)} logit rows, {len(features)} features, {len(examples)} sentences")
    fallback = fallback_tag(labels)
    predictions = []
    for scores, feature, example in zip(logits, features, examples, strict=True):
        best = np.asarray(scores).argmax(-1)
        predictions.append(
            [
                labels[best[position]] if position >= 0 else fallback
                for position, tag in zip(feature["word_positions"], example["tags"], strict=True)
                if int(tag) != IGNORE
            ]
        )
    return predictions


def gold_tags(examples: list[dict], labels: Sequence[str]) -> list[list[str]]:
    return [[labels[int(tag)] for tag in example["tags"] if int(tag) != IGNORE] for example in examples]


def lost_words_note(features: list[dict]) -> str | None:
    """How many words get no prediction of their own (None when every word has one)."""
    truncated = sum(f["words_truncated"] for f in features)
    untokenized = sum(f["words_untokenized"] for f in features)
    if not truncated and not untokenized:
        return None
    sentences = sum(f["words_truncated"] > 0 for f in features)
    parts = []
    if truncated:
        parts.append(f"{truncated} words of {sentences} sentences fall past the window")
    if untokenized:
        parts.append(f"{untokenized} words have no sub-token")
    return "; ".join(parts) + " (they get no prediction of their own)"
