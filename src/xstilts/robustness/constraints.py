"""Constraints on what an attack may change (TextAttack's pre-transformation and semantic constraints).

- `max_words_fraction`: at most this fraction of the attacked fields' words change (at least one word),
  counted over every edit applied (a phrase edit counts each word it replaces);
- `skip_stop_words`: a one-word edit never replaces a stop word of the input's language, and a phrase
  edit never replaces stop words only (a phrase such as "of the house" keeps its content word);
- `min_similarity`: the perturbed text keeps at least this sentence-embedding cosine to the original
  (each changed field, mean pooled last layer of a named encoder), checked before the victim is queried.
The query budget is the search's (`search.Search.query_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.robustness.edits import Edit
from xstilts.robustness.stopwords import stop_words
from xstilts.robustness.words import words_of


def word_budget(words: int, fraction: float) -> int:
    """Words an attack may change in an input of `words` words: floor(fraction x words), at least 1."""
    return max(1, math.floor(fraction * words + 1e-9)) if words else 0


def without_stop_words(example: dict, edits: Sequence[Edit], lang: str) -> list[Edit]:
    """`edits` less those that replace only stop words of `lang`."""
    stops = stop_words(lang)
    if not stops:
        return list(edits)
    kept, words = [], {}
    for edit in edits:
        if edit.field not in words:
            words[edit.field] = [word.lower() for word in words_of(example[edit.field])]
        replaced = words[edit.field][edit.start : edit.end]
        if not all(word in stops for word in replaced):
            kept.append(edit)
    return kept


class SentenceSimilarity:
    """Cosine between sentence embeddings of an original and a perturbed text, batched, originals cached."""

    def __init__(self, source: str, *, batch_size: int = 64, max_length: int = 128):
        from xstilts.models.checkpoint import build_model

        model, self.tokenizer, _ = build_model(source, {})
        self.encoder = model.encoder
        self.source, self.batch_size = source, batch_size
        self.max_length = min(max_length, self.tokenizer.model_max_length)
        self.layer = self.encoder.config.num_hidden_layers
        self._cache: dict[str, np.ndarray] = {}

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        from xstilts.evaluate.inference import embed
        from xstilts.tasks.kinds import get_kind

        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if missing:
            kind = get_kind("retrieval")  # encodes and batches {"text"} dicts
            features = kind.encode([{"text": t} for t in missing], self.tokenizer, self.max_length)
            found = embed(self.encoder, kind, self.tokenizer, features, self.layer, "mean", self.batch_size)
            found /= np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)
            self._cache.update(zip(missing, found, strict=True))
        return np.stack([self._cache[text] for text in texts])

    def cosines(self, originals: Sequence[str], perturbed: Sequence[str]) -> np.ndarray:
        if not originals:
            return np.zeros(0)
        return np.einsum("ij,ij->i", self._vectors(originals), self._vectors(perturbed))


@dataclass
class Constraints:
    max_words_fraction: float = 0.25
    skip_stop_words: bool = True
    min_similarity: float | None = None
    similarity: SentenceSimilarity | None = None

    def __post_init__(self):
        if self.min_similarity is not None and self.similarity is None:
            raise ValueError("min_similarity needs a SentenceSimilarity encoder")

    def allowed(self, example: dict, edits: Sequence[Edit], lang: str) -> list[Edit]:
        """The candidate edits the word-level constraints allow on the clean example."""
        return without_stop_words(example, edits, lang) if self.skip_stop_words else list(edits)

    def similar(
        self, originals: Sequence[dict], perturbed: Sequence[dict], fields: Sequence[str]
    ) -> np.ndarray:
        """Per candidate: every changed field keeps `min_similarity` to its original (True when unset)."""
        keep = np.ones(len(perturbed), dtype=bool)
        if self.min_similarity is None:
            return keep
        pairs = [
            (row, clean[field], changed[field])
            for row, (clean, changed) in enumerate(zip(originals, perturbed, strict=True))
            for field in fields
            if clean[field] != changed[field]
        ]
        if pairs:
            rows, before, after = zip(*pairs, strict=True)
            low = self.similarity.cosines(before, after) < self.min_similarity
            keep[np.asarray(rows)[low]] = False
        return keep
