"""Every metric in one place: `METRICS` maps a name to `function(predictions, gold, *, language=None)`.

Every function returns a fraction in [0, 1] (reports multiply by 100) and takes the keyword `language`,
so a caller can always pass the language being scored; only the MLQA metrics use it. What the
arguments are depends on the metric:

| metric                                | predictions / gold                                              |
|---------------------------------------|-----------------------------------------------------------------|
| accuracy                              | equal-length arrays (or lists) of labels                        |
| accuracy_tokens, ner_f1/precision/    | lists of sentences, each a list of tag strings (or tag ids with  |
| recall, pos_f1/precision/recall       | `labels=`, the tag names in id order)                           |
| squad_f1/em, squad_v2_f1/em,          | dict question id -> answer text / dict question id -> list of   |
| mlqa_f1/em                            | gold answer texts                                               |
| bucc_f1, bucc_precision, bucc_recall  | sets of (source id, target id) pairs                            |
| retrieval_accuracy                    | source and target sentence vectors, row i translates row i      |
| map_at_20                             | dict query id -> ranked candidate ids / dict query id -> list   |
|                                       | of relevant candidate ids                                       |

The conventions are those of XTREME's `evaluate.py` (google-research/xtreme): classification and Tatoeba
are plain accuracy; NER *and* POS are scored with seqeval's chunk F1 on the tag sequences, computed as
seqeval 0.0.12 did for the published numbers (`tag_chunks`; see `pos_f1` for what that means for UPOS
tags); XQuAD and TyDiQA use the SQuAD v1.1 script, MLQA its own script with the language; BUCC is F1 over
the set of mined pairs. The tagging and BUCC tasks also report precision and recall beside F1, as
`evaluate.py` does; F1 stays the headline. The XTREME-R ranking tasks (LAReQA, Mewsli-X) are scored
with mAP@20 (`map_at_k`). Mismatched inputs (missing or extra ids, sentences of
different lengths, nothing to score) raise `ScoringError` instead of yielding a lower score.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import faiss
import numpy as np

from xstilts.errors import unknown_name
from xstilts.evaluate.checks import ScoringError, check_same_ids, check_sequences
from xstilts.evaluate.qa_metrics import qa_scores
from xstilts.evaluate.tag_chunks import chunk_precision_recall_f1


def accuracy(predictions, labels, *, language: str | None = None) -> float:
    """Fraction of positions where prediction equals label (XTREME: XNLI, PAWS-X, Tatoeba)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ScoringError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    if labels.size == 0:
        raise ScoringError("accuracy of an empty set is undefined")
    return float((predictions == labels).mean())


# ---------------------------------------------------------------------------------------------- tagging


def _tag_lists(sequences: Iterable[Iterable], labels: Sequence[str] | None) -> list[list[str]]:
    """Sentences as lists of tag strings; integer tag ids are looked up in `labels`."""
    out = []
    for sentence in sequences:
        tags = []
        for tag in sentence:
            if isinstance(tag, str):
                tags.append(tag)
            elif labels is None:
                raise ScoringError(f"tag {tag!r} is not a string; pass labels= to map tag ids to names")
            else:
                tags.append(labels[int(tag)])
        out.append(tags)
    return out


def accuracy_tokens(
    predictions: Sequence[Sequence],
    gold: Sequence[Sequence],
    *,
    language: str | None = None,
    labels: Sequence[str] | None = None,
) -> float:
    """Token-level accuracy over all tags of all sentences (jiant's CCG supertagging metric)."""
    predictions, gold = _tag_lists(predictions, labels), _tag_lists(gold, labels)
    check_sequences(predictions, gold)
    total = sum(len(sentence) for sentence in gold)
    if total == 0:
        raise ScoringError("no tokens to score")
    right = sum(
        p == g for pred, true in zip(predictions, gold, strict=True) for p, g in zip(pred, true, strict=True)
    )
    return right / total


def _chunk_scores(predictions, gold, labels) -> tuple[float, float, float]:
    predictions, gold = _tag_lists(predictions, labels), _tag_lists(gold, labels)
    check_sequences(predictions, gold)
    return chunk_precision_recall_f1(predictions, gold)


_NER_DOC = """Entity-level micro {what} of IOB2 tags, as XTREME for NER ({zero}).

An entity counts as found when its type, first and last token all match; an I- tag after O or after
another type opens an entity. Computed by `tag_chunks`, seqeval 0.0.12's chunking, like the POS metrics: on
well-formed IOB2 tags with hyphen-free types (PAN-X's PER, LOC, ORG) 0.0.12 and seqeval 1.x agree (checked
on every sequence pair of up to three tags and on random ones), but they differ on malformed tags, e.g. a
bare "B" or a type with a hyphen ("B-A-B" has type "B" in 0.0.12, "A-B" in 1.x), so one implementation
serves both tasks and always gives XTREME's numbers.
"""

_POS_DOC = """XTREME's POS {what}: seqeval 0.0.12's chunk {what} of UPOS tag sequences ({zero}).

XTREME's `evaluate.py` maps udpos to the same seqeval functions as panx, and its published numbers (and the
values its `evaluate_test.py` expects) were computed with seqeval 0.0.12. UPOS tags carry no B-/I- prefix,
so 0.0.12 reads the first character as the chunk tag and the whole tag as the type ("NOUN" is tag "N", type
"NOUN"). Consequences: a run of identical tags is one chunk that must be predicted exactly (a single wrong
tag inside a run of three NOUNs costs the whole run); SCONJ and SYM start with "S" (seqeval's "single"), so
each of their tokens is a chunk of its own. seqeval >= 1.0 reads the type as the tag minus its first
letter, so there CCONJ and SCONJ are both "CONJ" (one predicted for the other counts as right) and "X" has
no type at all (an X ending a sentence is no chunk); both raise its POS F1 above the published numbers.
These functions therefore do not call seqeval but `tag_chunks`, a tested reimplementation of 0.0.12. The
score differs from token accuracy; it is what the XTREME leaderboard reports as POS F1.
"""

_ZERO = {
    "precision": "0 when nothing is predicted",
    "recall": "0 when there is nothing to find",
    "F1": "0 when there is nothing to find or nothing predicted, as XTREME reports",
}


def _chunk_metric(name: str, part: int, doc: str):
    """One of precision (0), recall (1), F1 (2) over chunks, as a metric function named `name`."""

    def metric(
        predictions: Sequence[Sequence],
        gold: Sequence[Sequence],
        *,
        language: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> float:
        return _chunk_scores(predictions, gold, labels)[part]

    what = ("precision", "recall", "F1")[part]
    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc.format(what=what, zero=_ZERO[what])
    return metric


ner_precision = _chunk_metric("ner_precision", 0, _NER_DOC)
ner_recall = _chunk_metric("ner_recall", 1, _NER_DOC)
ner_f1 = _chunk_metric("ner_f1", 2, _NER_DOC)
pos_precision = _chunk_metric("pos_precision", 0, _POS_DOC)
pos_recall = _chunk_metric("pos_recall", 1, _POS_DOC)
pos_f1 = _chunk_metric("pos_f1", 2, _POS_DOC)


# ------------------------------------------------------------------------------------------------- QA


def _qa(rules: str, key: str, predictions, gold, language: str | None) -> float:
    return qa_scores(predictions, gold, rules, language)[key]


def squad_f1(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language=None) -> float:
    """SQuAD v1.1 token F1 (XTREME: XQuAD, TyDiQA-GoldP)."""
    return _qa("squad", "f1", predictions, gold, None)


def squad_em(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language=None) -> float:
    """SQuAD v1.1 exact match (XTREME: XQuAD, TyDiQA-GoldP)."""
    return _qa("squad", "exact_match", predictions, gold, None)


def squad_v2_f1(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language=None) -> float:
    """SQuAD v2.0 token F1: an empty gold list means unanswerable, a prediction of "" means no answer."""
    return _qa("squad_v2", "f1", predictions, gold, None)


def squad_v2_em(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language=None) -> float:
    """SQuAD v2.0 exact match, with the same no-answer convention as `squad_v2_f1`."""
    return _qa("squad_v2", "exact_match", predictions, gold, None)


def mlqa_f1(
    predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language: str = "en"
) -> float:
    """MLQA's token F1 with the answer language's normalisation (one of qa_metrics.MLQA_LANGUAGES)."""
    return _qa("mlqa", "f1", predictions, gold, language)


def mlqa_em(
    predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]], *, language: str = "en"
) -> float:
    """MLQA's exact match with the answer language's normalisation."""
    return _qa("mlqa", "exact_match", predictions, gold, language)


# ------------------------------------------------------------------------------------- mining, retrieval


def _pair_set(pairs: Iterable) -> set[tuple[str, str]]:
    out = set()
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ScoringError(f"a BUCC pair must be (source id, target id), got {pair!r}")
        out.add((str(pair[0]), str(pair[1])))
    return out


def bucc_precision_recall_f1(predictions: Iterable, gold: Iterable) -> tuple[float, float, float]:
    """Precision, recall and F1 of mined pairs against gold pairs; all three are 0 when none is right."""
    predicted, expected = _pair_set(predictions), _pair_set(gold)
    correct = len(predicted & expected)
    if correct == 0:
        return 0.0, 0.0, 0.0
    precision, recall = correct / len(predicted), correct / len(expected)
    return precision, recall, 2 * precision * recall / (precision + recall)


def bucc_f1(predictions: Iterable, gold: Iterable, *, language: str | None = None) -> float:
    """BUCC 2018 F1 over (source id, target id) pairs, as XTREME's `bucc_f1` (duplicates count once)."""
    return bucc_precision_recall_f1(predictions, gold)[2]


def bucc_precision(predictions: Iterable, gold: Iterable, *, language: str | None = None) -> float:
    """Fraction of the mined pairs that are gold pairs (0 when none is right), as XTREME's `bucc_f1`."""
    return bucc_precision_recall_f1(predictions, gold)[0]


def bucc_recall(predictions: Iterable, gold: Iterable, *, language: str | None = None) -> float:
    """Fraction of the gold pairs that were mined (0 when none is right), as XTREME's `bucc_f1`."""
    return bucc_precision_recall_f1(predictions, gold)[1]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(vectors)
    return vectors


def nearest_neighbours(queries: np.ndarray, keys: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the k most cosine-similar keys for each query (exact search with faiss)."""
    keys_unit = _unit(keys)
    index = faiss.IndexFlatIP(keys_unit.shape[1])
    index.add(keys_unit)
    _, ids = index.search(_unit(queries), k)
    return ids


def retrieval_accuracy(source: np.ndarray, target: np.ndarray, *, language: str | None = None) -> float:
    """Top-1 accuracy of finding row i of `target` for row i of `source` by cosine (Tatoeba protocol)."""
    if source.shape != target.shape:
        raise ScoringError(f"parallel sets differ in shape: {source.shape} vs {target.shape}")
    if len(source) == 0:
        raise ScoringError("retrieval over an empty set is undefined")
    top1 = nearest_neighbours(source, target, k=1)[:, 0]
    return float((top1 == np.arange(len(source))).mean())


# ----------------------------------------------------------------------------------------------- ranking


def average_precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """AP@k of one query: the mean, over min(#relevant, k), of precision at each rank <= k holding a
    relevant candidate not already counted (XTREME's `third_party/utils_lareqa.py`,
    `average_precision_at_k`). With a single relevant candidate this is the reciprocal rank within the
    top k, which is how Mewsli-X's `utils_mewslix.evaluate` computes its "MAP@20" (MRR@20)."""
    relevant = set(relevant)
    if not relevant:
        raise ScoringError("a query without relevant candidates has no average precision")
    hits, total, seen = 0, 0.0, set()
    for rank, candidate in enumerate(list(ranked)[:k], start=1):
        if candidate in relevant and candidate not in seen:
            hits += 1
            total += hits / rank
        seen.add(candidate)
    return total / min(len(relevant), k)


def map_at_k(
    predictions: Mapping[str, Sequence[str]], gold: Mapping[str, Collection[str]], *, k: int, language=None
) -> float:
    """Mean AP@k over the gold queries; every query needs a ranking (see `average_precision_at_k`)."""
    check_same_ids(predictions, gold, "queries")
    return float(np.mean([average_precision_at_k(predictions[q], gold[q], k) for q in gold]))


def map_at_20(
    predictions: Mapping[str, Sequence[str]], gold: Mapping[str, Collection[str]], *, language=None
) -> float:
    """mAP@20, XTREME-R's metric for LAReQA and Mewsli-X."""
    return map_at_k(predictions, gold, k=20)


METRICS = {
    "accuracy": accuracy,
    "accuracy_tokens": accuracy_tokens,
    "ner_f1": ner_f1,
    "ner_precision": ner_precision,
    "ner_recall": ner_recall,
    "pos_f1": pos_f1,
    "pos_precision": pos_precision,
    "pos_recall": pos_recall,
    "squad_f1": squad_f1,
    "squad_em": squad_em,
    "squad_v2_f1": squad_v2_f1,
    "squad_v2_em": squad_v2_em,
    "mlqa_f1": mlqa_f1,
    "mlqa_em": mlqa_em,
    "bucc_f1": bucc_f1,
    "bucc_precision": bucc_precision,
    "bucc_recall": bucc_recall,
    "retrieval_accuracy": retrieval_accuracy,
    "map_at_20": map_at_20,
}


def get_metric(name: str):
    try:
        return METRICS[name]
    except KeyError:
        raise unknown_name("metric", name, METRICS) from None
