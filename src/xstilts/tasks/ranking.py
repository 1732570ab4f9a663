"""Ranking problems assembled from the parts the adapters yield, and the training pairs they hold.

An adapter turns one raw record into a *part* (see `spec.py`): {"language", "queries": {qid: text},
"candidates": {cid: text}, "relevant": {qid: [key, ...]}, "answers": {key: [cid, ...]}}. A query's
relevant candidates are the candidates its keys answer, looked up over every part of the split, so
relevance can cross records and files:

- LAReQA: the key is the question's id, which the question keeps in all 11 XQuAD-R languages, and each
  language's part answers it with that language's answer sentence. So every translation of the gold
  sentence is relevant, as in XTREME's `third_party/utils_lareqa.py` (`mean_avg_prec_at_k` marks every
  candidate of the question's `xling_id` relevant), and the pool is every sentence of every language.
- Mewsli-X: the key is the gold entity's WikiData id; the candidate set's part for that entity answers it.

Training pairs: each query of a part with each candidate that the same part gives for its keys (a SQuAD
question and its answer sentence; a Wikipedia mention and its entity).

Evaluation: one problem per language, {"id": lang, "language": lang, "queries", "candidates",
"relevant": {qid: [cid, ...]}}: the queries of the parts in that language, the candidates of all parts.
`limit` caps the queries (a seeded subset, kept in order); the candidate pool is never cut, since the
pool's size is part of what the benchmark measures. With the same seed and the same number of questions
in every language (XQuAD-R is parallel), the same questions are kept in every language.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from xstilts.errors import XstiltsError


def _merge_texts(into: dict[str, str], texts: dict[str, str], what: str, where: str) -> None:
    for key, text in texts.items():
        if into.setdefault(key, text) != text:
            raise XstiltsError(f"{where}: {what} id {key!r} appears with two different texts")


def training_pairs(part: dict) -> list[dict]:
    """{"id", "query", "candidate"} for each query of `part` and each candidate the part gives it."""
    pairs = []
    answers, candidates = part.get("answers", {}), part.get("candidates", {})
    for qid, text in part.get("queries", {}).items():
        for key in part.get("relevant", {}).get(qid, ()):
            for cid in answers.get(key, ()):
                if cid in candidates:
                    pairs.append({"id": qid, "query": text, "candidate": candidates[cid]})
    return pairs


def _query_subset(ids: list[str], limit: int | None, seed: int) -> list[str]:
    if limit is None or limit >= len(ids):
        return ids
    chosen = np.random.default_rng(seed).choice(len(ids), size=limit, replace=False)
    return [ids[i] for i in sorted(chosen)]


def merge_parts(parts: Iterable[dict], lang: str, *, limit: int | None, seed: int, where: str) -> dict:
    """One problem in `lang` from the parts of a split (see the module docstring); `where` names the
    task, split and language in errors."""
    queries: dict[str, str] = {}
    candidates: dict[str, str] = {}
    keys: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    for part in parts:
        if part.get("language") == lang:
            _merge_texts(queries, part.get("queries", {}), "query", where)
            for qid, qkeys in part.get("relevant", {}).items():
                keys.setdefault(qid, []).extend(k for k in qkeys if k not in keys.get(qid, ()))
        _merge_texts(candidates, part.get("candidates", {}), "candidate", where)
        for key, cids in part.get("answers", {}).items():
            known = answers.setdefault(key, [])
            known.extend(cid for cid in cids if cid not in known)
    if not queries:
        raise XstiltsError(f"{where}: no queries in this language")
    kept = _query_subset(list(queries), limit, seed)
    relevant = {}
    for qid in kept:
        found = [cid for key in keys.get(qid, ()) for cid in answers.get(key, ()) if cid in candidates]
        if not found:
            wanted = ", ".join(map(repr, keys.get(qid, ()))) or "none given"
            raise XstiltsError(
                f"{where}: query {qid!r} has no relevant candidate in the pool (its gold: {wanted}); "
                "the candidate file may be incomplete"
            )
        relevant[qid] = list(dict.fromkeys(found))
    return {
        "id": lang,
        "language": lang,
        "queries": {qid: queries[qid] for qid in kept},
        "candidates": candidates,
        "relevant": relevant,
    }
