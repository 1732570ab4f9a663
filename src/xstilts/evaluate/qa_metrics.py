"""Extractive-QA scores as the official scorers compute them.

SQuAD v1.1 (also used by XTREME for XQuAD and TyDiQA-GoldP): lower-case, strip punctuation and English
articles, split on whitespace; EM and token F1 take the maximum over the gold answers of a question and
are averaged over questions. MLQA's scorer differs in two ways: punctuation is every Unicode "P*"
character, and articles and tokenisation depend on the language (Chinese is split into characters).
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache

_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}
MLQA_LANGUAGES = tuple(_ARTICLES)
_HAN = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=1)
def _unicode_punctuation() -> frozenset[str]:
    return frozenset(
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    ) | frozenset(string.punctuation)


def _split_mixed(text: str) -> list[str]:
    """Han characters and punctuation are tokens of their own; the rest splits on whitespace."""
    tokens, run = [], []
    for char in text:
        if _HAN.match(char) or char in _unicode_punctuation():
            tokens.extend("".join(run).split())
            run = []
            tokens.append(char)
        else:
            run.append(char)
    tokens.extend("".join(run).split())
    return tokens


def normalize_answer(text: str, lang: str | None = None) -> list[str]:
    """Tokens of a normalised answer: SQuAD's rules when `lang` is None, MLQA's for an MLQA language."""
    text = text.lower()
    if lang is None:
        text = "".join(ch for ch in text if ch not in set(string.punctuation))
        return re.sub(_ARTICLES["en"], " ", text).split()
    if lang not in _ARTICLES:
        raise ValueError(f"MLQA scores languages {', '.join(MLQA_LANGUAGES)}, not {lang!r}")
    text = "".join(ch for ch in text if ch not in _unicode_punctuation())
    if _ARTICLES[lang]:
        text = re.sub(_ARTICLES[lang], " ", text)
    tokens = _split_mixed(text) if lang == "zh" else text.split()
    return [token for token in tokens if token.strip()]


def _f1(prediction: list[str], gold: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str | None = None
) -> dict[str, float]:
    """{'exact_match', 'f1'} in [0, 1] over every question in `references`.

    A question without a prediction is an error that names it, never a silent zero.
    """
    missing = sorted(set(references) - set(predictions))
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{len(missing)} questions have no prediction: {shown}")
    if not references:
        raise ValueError("no questions to score")
    exact = f1 = 0.0
    for qid, answers in references.items():
        prediction = normalize_answer(predictions[qid], lang)
        golds = [normalize_answer(answer, lang) for answer in answers]
        exact += max(float(prediction == gold) for gold in golds)
        f1 += max(_f1(prediction, gold) for gold in golds)
    return {"exact_match": exact / len(references), "f1": f1 / len(references)}
