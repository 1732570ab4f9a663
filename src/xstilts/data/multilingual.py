"""Multilingual intermediate training data: each English example drawn in one language, and matched budgets.

`draw_translations` keeps the English training set's size and content and changes only the language each
example is read in: "multilingual" picks one of the translation languages for every example, "both" keeps
an example in English with probability `english_share` and otherwise picks a translation. An example is
matched to its translations by the English text a translation names (XNLI's translate-train rows keep the
pair they translate), else by its id (the dataset's own, e.g. SQuAD question ids, which translate-train
releases keep; or the position in the file for files without ids, which are line-aligned); a language that
lacks the example's translation is not drawn for it. So an arm trained on drawn data sees the same examples,
as many of them, as the English arm: a difference between the arms comes from the languages alone.

`check_budget` is the matched-budget guard: an arm whose data cannot supply the budget's examples stops
before any training, naming the arm and what its data holds.
"""

from __future__ import annotations

import numpy as np

from xstilts.errors import XstiltsError

DRAW_SALT = 0xD4A3  # the language draw's own stream, apart from the training order of the same seed


def alignment_key(example: dict, auto_prefix: str) -> str:
    """What matches an example with its translations: the English text it translates when it carries it
    (`original`, XTREME's XNLI translate-train rows), else its id, or its position for ids the loader made
    up ("<task>-<split>-<lang>-<index>", which differ by language)."""
    if "original" in example:
        return text_key(example["original"])
    example_id = str(example["id"])
    if example_id.startswith(auto_prefix):
        return "#" + example_id[len(auto_prefix) :]
    return example_id


def text_key(texts) -> str:
    """An alignment key made of the English texts themselves."""
    return "text:" + "\t".join(str(text) for text in texts)


def draw_translations(
    english: list[dict],
    translations: dict[str, dict[str, dict]],
    languages: list[str],
    *,
    english_language: str = "en",
    english_share: float | None = None,
    keys: list[str],
    seed: int,
) -> tuple[list[dict], list[str]]:
    """Each English example (its alignment key in `keys`) in one drawn language; returns the drawn
    examples, in the English order, and the language of each.

    `translations` maps a language to {alignment key: translated example}. `english_share` (mode "both")
    is the probability of keeping English; None (mode "multilingual") never keeps it. An example with no
    translation in any allowed language is left out (the budget check then counts what remains).
    """
    rng = np.random.default_rng([seed, DRAW_SALT])
    drawn, drawn_in = [], []
    for example, key in zip(english, keys, strict=True):
        available = [lang for lang in languages if key in translations.get(lang, {})]
        keep_english = english_share is not None and (not available or rng.random() < english_share)
        if keep_english:
            drawn.append(example)
            drawn_in.append(english_language)
        elif available:
            lang = available[int(rng.integers(len(available)))]
            drawn.append({**translations[lang][key], "id": example["id"]})
            drawn_in.append(lang)
    return drawn, drawn_in


def check_budget(arm: str, task: str, available: int, budget: int, detail: str = "") -> None:
    """Stop when an arm's training data holds fewer examples than the matched budget asks for."""
    if available < budget:
        raise XstiltsError(
            f"intermediate {arm}: the budget asks for {budget} training examples of {task}, but this arm's "
            f"data holds {available}{f' ({detail})' if detail else ''}; lower budget.examples to at most "
            f"{available} or give the arm more data"
        )
