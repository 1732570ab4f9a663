"""Token tagging (POS, NER, supertags): one tag per word, predicted on the word's first sub-token.

Nothing is truncated and no word is scored with a stand-in tag; the rules follow XTREME:

- Long sentences are split into pieces before encoding, as google-research/xtreme `utils_preprocess.py`
  does (`panx_tokenize_preprocess`, `udpos_tokenize_preprocess`, run with `--max_len 128` by
  `scripts/preprocess_{panx,udpos}.sh`): consecutive whole words go into a piece while their sub-tokens
  fit, and a word that would overflow it starts the next piece. XTREME's cap is 128 minus the 3 special
  tokens it counts for XLM-R, i.e. `PIECE_SUBTOKENS` = 125 sub-tokens of words per piece; here it is
  also never more than the window (`max_length` minus the tokenizer's own special tokens), so a piece
  always fits whole. Training sentences are split the same way (XTREME splits its training files too).
- A word the tokenizer turns into no sub-token (a control character, an empty string) is encoded as the
  unk token, as xtreme `third_party/utils_tag.py` (`convert_examples_to_features`) does, so it gets a
  real prediction.
- A single word whose sub-tokens alone exceed the cap is the only thing still cut: it keeps its first
  `cap` sub-tokens (its first sub-token, the one labelled and read, is always kept) and is counted in
  the encoding note. (XTREME's preprocessing replaces such a word by the unk token instead; keeping its
  first pieces tells the model more and changes nothing else.)

Each piece becomes one feature: the first sub-token of each of its words carries the word's tag id,
every other position (later sub-tokens, special tokens) carries -100, which the loss ignores.
Evaluation features also record which sentence (`example_index`) and which words (`first_word`, then one
token position per word in `word_positions`) they cover; decoding reads the argmax at each word's first
sub-token and rejoins the pieces into one tag list per original sentence (as xtreme
`third_party/run_tag.py`, `save_predictions`, does with the sentence index files the preprocessing
writes), checking that every word was predicted exactly once. Words are tokenised in one batch call over
all sentences, then cut into pieces.

A gold tag of -100 (a CCG dev/test supertag unseen in training, see `adapters.IGNORED_TAG`) is neither
trained nor scored: such words are left out of both the predictions and the gold sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE = -100
# xtreme scripts/preprocess_{panx,udpos}.sh: --max_len 128; utils_preprocess.py subtracts 3 for XLM-R
PIECE_SUBTOKENS = 128 - 3


def _special_ids(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a single sequence (XLM-R: <s>, </s>)."""
    enc = tokenizer([["a"]], is_split_into_words=True)
    ids, words = enc["input_ids"][0], enc.word_ids(0)
    first = words.index(0)
    last = len(words) - 1 - words[::-1].index(0)
    return list(ids[:first]), list(ids[last + 1 :])


def _pieces(word_tokens: list[list[int]], cap: int) -> list[tuple[int, int]]:
    """Greedy [start, end) word ranges whose sub-tokens fit `cap` (each word already at most `cap`)."""
    ranges, start, used = [], 0, 0
    for index, tokens in enumerate(word_tokens):
        if used + len(tokens) > cap and index > start:
            ranges.append((start, index))
            start, used = index, 0
        used += len(tokens)
    ranges.append((start, len(word_tokens)))  # an empty sentence is one empty piece
    return ranges


def encode_tagging(examples: list[dict], tokenizer, max_length: int, *, for_training: bool) -> list[dict]:
    """One unpadded feature per piece of each sentence, pieces in sentence order (see module docstring).

    Every feature carries `piece` and `pieces` (its index and its sentence's number of pieces),
    `words_cut` and `words_unk` (how many of its words were cut because they alone exceed a piece, or
    encoded as the unk token), for `lost_words_note`. Evaluation features also carry `example_index`,
    `first_word` and `word_positions`.
    """
    if not examples:
        return []
    for index, example in enumerate(examples):
        words, tags = example["tokens"], example["tags"]
        if len(words) != len(tags):
            raise ValueError(f"example {example.get('id', index)!r}: {len(words)} words but {len(tags)} tags")
    prefix, suffix = _special_ids(tokenizer)
    cap = min(PIECE_SUBTOKENS, max_length - len(prefix) - len(suffix))
    if cap < 1:
        raise ValueError(f"a window of {max_length} tokens leaves no room for words")
    enc = tokenizer(
        [list(ex["tokens"]) for ex in examples],
        is_split_into_words=True,
        add_special_tokens=False,
        verbose=False,  # whole sentences may exceed the model's length: they are cut into pieces below
    )
    unk = tokenizer.unk_token_id
    features = []
    for index, example in enumerate(examples):
        tags = example["tags"]
        word_tokens: list[list[int]] = [[] for _ in tags]
        for token, word in zip(enc["input_ids"][index], enc.word_ids(index), strict=True):
            if word is not None:
                word_tokens[word].append(token)
        unknown, cut = [False] * len(tags), [False] * len(tags)
        for word, tokens in enumerate(word_tokens):
            if not tokens:
                if unk is None:
                    raise ValueError(
                        f"word {word} of sentence {index} has no sub-token and there is no unk token"
                    )
                word_tokens[word], unknown[word] = [unk], True
            elif len(tokens) > cap:
                word_tokens[word], cut[word] = tokens[:cap], True
        ranges = _pieces(word_tokens, cap)
        for piece, (start, end) in enumerate(ranges):
            ids, labels, positions = list(prefix), [IGNORE] * len(prefix), []
            for word in range(start, end):
                positions.append(len(ids))
                ids += word_tokens[word]
                labels += [int(tags[word])] + [IGNORE] * (len(word_tokens[word]) - 1)
            ids += suffix
            labels += [IGNORE] * len(suffix)
            feature = {
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": labels,
                "piece": piece,
                "pieces": len(ranges),
                "words_cut": sum(cut[start:end]),
                "words_unk": sum(unknown[start:end]),
            }
            if not for_training:
                feature["example_index"] = index
                feature["first_word"] = start
                feature["word_positions"] = positions
            features.append(feature)
    return features


def decode_tagging(
    logits: Sequence[np.ndarray], features: list[dict], examples: list[dict], labels: Sequence[str]
) -> list[list[str]]:
    """Tag names per word of every example: pieces' (length, tags) logits read and rejoined per sentence."""
    if len(logits) != len(features):
        raise ValueError(f"{len(logits)} logit rows for {len(features)} features")
    words: list[list[str | None]] = [[None] * len(example["tags"]) for example in examples]
    for scores, feature in zip(logits, features, strict=True):
        best = np.asarray(scores).argmax(-1)
        sentence, start = words[feature["example_index"]], feature["first_word"]
        for offset, position in enumerate(feature["word_positions"]):
            if sentence[start + offset] is not None:
                raise ValueError(
                    f"word {start + offset} of sentence {feature['example_index']} is in two pieces"
                )
            sentence[start + offset] = labels[best[position]]
    predictions = []
    for index, (predicted, example) in enumerate(zip(words, examples, strict=True)):
        if None in predicted:
            raise ValueError(f"sentence {index}: word {predicted.index(None)} is in no feature")
        predictions.append(
            [tag for tag, gold in zip(predicted, example["tags"], strict=True) if int(gold) != IGNORE]
        )
    return predictions


def gold_tags(examples: list[dict], labels: Sequence[str]) -> list[list[str]]:
    return [[labels[int(tag)] for tag in example["tags"] if int(tag) != IGNORE] for example in examples]


def lost_words_note(features: list[dict]) -> str | None:
    """How many sentences were split into how many pieces, and which words were cut or became unk."""
    split = [f["pieces"] for f in features if f["piece"] == 0 and f["pieces"] > 1]
    cut = sum(f["words_cut"] for f in features)
    unknown = sum(f["words_unk"] for f in features)
    parts = []
    if split:
        parts.append(f"{len(split)} sentences split into {sum(split)} pieces")
    if cut:
        parts.append(f"{cut} words longer than a whole piece keep only their first sub-tokens")
    if unknown:
        parts.append(f"{unknown} words with no sub-token encoded as the unk token")
    return "; ".join(parts) or None
