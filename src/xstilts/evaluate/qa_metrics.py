"""Extractive-QA scores (EM and token F1) as the official scorers compute them.

XTREME's `install_tools.sh` fetches two scorers into `third_party/`: the SQuAD v1.1 script (used by its
`evaluate.py` for XQuAD and TyDiQA-GoldP) and MLQA's `mlqa_evaluation_v1.py` (for MLQA, called with the
test language). SQuAD v2.0 has its own official script. The three differ as follows:

- **SQuAD v1.1**: lower-case, drop ASCII punctuation (`string.punctuation`), drop the English articles
  a/an/the, split on whitespace. EM is equality of the normalised strings; F1 is the token-overlap F1,
  0 when nothing is shared (so two answers that normalise to nothing get EM 1 but F1 0). Each question
  takes its best score over the gold answers; the totals are averaged over questions.
- **SQuAD v2.0**: the same normalisation, but gold answers that normalise to nothing are dropped and a
  question left with no gold answer has the single gold answer "" (unanswerable). F1 between two empty
  token lists is 1 and between an empty and a non-empty one 0, so predicting "" scores 1/1 on an
  unanswerable question and 0/0 on an answerable one.
- **MLQA**: punctuation is every Unicode character of a "P*" category plus ASCII punctuation, the
  article list depends on the language, and Chinese is split into Han characters and punctuation marks
  (other runs split on whitespace). F1 and EM are otherwise SQuAD v1.1's.

Where the official scripts print a warning and score a missing prediction 0 (v1.1, MLQA) or skip it
(v2.0), these functions raise `ScoringError` naming the questions; a prediction for an unknown question is
an error too.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache

from xstilts.evaluate.checks import ScoringError, check_same_ids

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
RULES = ("squad", "squad_v2", "mlqa")
_HAN = re.compile(r"[\u4e00-\u9fa5]")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


@lru_cache(maxsize=1)
def _unicode_punctuation() -> frozenset[str]:
    return frozenset(
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    ) | frozenset(string.punctuation)


def _split_mixed(text: str) -> list[str]:
    """Han characters and punctuation are tokens of their own; the rest splits on whitespace."""
    punctuation = _unicode_punctuation()
    tokens, run = [], []
    for char in text:
        if _HAN.match(char) or char in punctuation:
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
        text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
        return re.sub(_ARTICLES["en"], " ", text).split()
    if lang not in _ARTICLES:
        raise ScoringError(f"MLQA scores languages {', '.join(MLQA_LANGUAGES)}, not {lang!r}")
    punctuation = _unicode_punctuation()
    text = "".join(ch for ch in text if ch not in punctuation)
    if _ARTICLES[lang]:
        text = re.sub(_ARTICLES[lang], " ", text)
    tokens = _split_mixed(text) if lang == "zh" else text.split()
    return [token for token in tokens if token.strip()]


def _f1(prediction: list[str], gold: list[str]) -> float:
    """SQuAD v1.1 / MLQA token F1: 0 whenever no token is shared (two empty answers included)."""
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _f1_v2(prediction: list[str], gold: list[str]) -> float:
    """SQuAD v2.0 token F1: an empty side scores 1 only against another empty side."""
    if not prediction or not gold:
        return float(prediction == gold)
    return _f1(prediction, gold)


def _question_scores(
    prediction: str, answers: Sequence[str], rules: str, language: str | None
) -> tuple[float, float]:
    if isinstance(answers, str):
        raise ScoringError(f"gold answers must be a list of strings, got the string {answers!r}")
    if not isinstance(prediction, str):
        raise ScoringError(f"a prediction must be a string, got {prediction!r}")
    if rules == "squad_v2":
        pred = normalize_answer(prediction)
        golds = [tokens for tokens in (normalize_answer(answer) for answer in answers) if tokens] or [[]]
        return max(float(pred == gold) for gold in golds), max(_f1_v2(pred, gold) for gold in golds)
    if not answers:
        raise ScoringError(f"a question without gold answers cannot be scored with {rules!r} rules")
    lang = language if rules == "mlqa" else None
    pred = normalize_answer(prediction, lang)
    golds = [normalize_answer(answer, lang) for answer in answers]
    return max(float(pred == gold) for gold in golds), max(_f1(pred, gold) for gold in golds)


def qa_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    rules: str = "squad",
    language: str | None = None,
) -> dict[str, float]:
    """{'exact_match', 'f1'} in [0, 1], averaged over every question in `references`.

    `predictions` maps question id -> answer text; `references` maps question id -> gold answer texts
    (an empty list is an unanswerable question, allowed only under "squad_v2" rules). `rules` is one of
    "squad" (v1.1), "squad_v2" or "mlqa"; "mlqa" needs `language`, one of `MLQA_LANGUAGES`.
    """
    if rules not in RULES:
        raise ScoringError(f"unknown QA scoring rules {rules!r}; valid: {', '.join(RULES)}")
    if rules == "mlqa" and language is None:
        raise ScoringError("MLQA scoring needs the answer language")
    check_same_ids(predictions, references)
    exact = f1 = 0.0
    for qid, answers in references.items():
        question_exact, question_f1 = _question_scores(predictions[qid], answers, rules, language)
        exact += question_exact
        f1 += question_f1
    return {"exact_match": exact / len(references), "f1": f1 / len(references)}


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str | None = None
) -> dict[str, float]:
    """SQuAD v1.1 scores, or MLQA's when `lang` is given (kept for callers of the first version)."""
    return qa_scores(predictions, references, "squad" if lang is None else "mlqa", lang)
