"""The training examples of one task of an intermediate training, in the languages its mixture asks for.

Three ways to use translations (`mixtures.<name>.translate`), and none (English only):

- **concatenated** (no `draw`): English (unless `keep_english: false`) followed by every translation, so
  the data grows with each language (XTREME's translate-train baseline);
- **drawn** (`draw: multilingual | both`): each English example once, in one drawn language
  (`data.multilingual.draw_translations`), so the data keeps the English size.

With a matched budget (`budget:` in the config) every arm then keeps exactly `budget.examples` of them (a
seeded subset, the same for every run seed), after `data.multilingual.check_budget` has made sure it has
that many. Returned with each example is the language it is in, which the run records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from xstilts.data.multilingual import alignment_key, check_budget, draw_translations, text_key
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.sources import auto_id_prefix, subset, translated_spec
from xstilts.tasks.spec import TaskSpec

Loader = Callable[[TaskSpec, str, str, int | None], list[dict]]  # (spec, split, language, limit)


def _auto_prefix(spec: TaskSpec, lang: str) -> str:
    """The start of the training ids `sources` makes up for records without one, up to the index."""
    return auto_id_prefix(spec.name, "train", lang) + "-"


def intermediate_examples(
    load: Loader,
    spec: TaskSpec,
    *,
    arm: str,
    translate,
    limit: int | None,
    budget,
    seed: int,
    data_seed: int,
    data_dir=None,
    english_copies: Callable[[list[dict]], list[dict]] = lambda examples: examples,
) -> tuple[list[dict], Counter]:
    """(examples, examples per language) of `spec`'s training split for the intermediate `arm`.

    `limit` caps each language's examples as loaded; `english_copies` adds a data strategy's copies to the
    English examples; `budget` (or None) is the run's matched budget."""
    english = spec.train_language
    pairs: list[tuple[dict, str]] = []
    if translate is not None and translate.draw:
        base = load(spec, "train", english, limit)
        translations = {}
        for lang in translate.languages:
            source = translated_spec(spec, lang, translate, data_dir)
            # Bible translations hold the same examples for the same limit; files are matched by key
            loaded = load(source, "train", lang, limit if spec.source == "bible" else None)
            translations[lang] = {alignment_key(ex, _auto_prefix(spec, lang)): ex for ex in loaded}
        share = translate.english_share if translate.draw == "both" else None
        by_text = any(key.startswith("text:") for table in translations.values() for key in table)
        fields = get_kind(spec.kind).attack_fields  # the text fields, which a translation's `original` holds
        keys = [
            text_key(ex[f] for f in fields) if by_text else alignment_key(ex, _auto_prefix(spec, english))
            for ex in base
        ]
        drawn, drawn_in = draw_translations(
            base,
            translations,
            list(translate.languages),
            english_language=english,
            english_share=share,
            keys=keys,
            seed=seed,
        )
        in_english = [ex for ex, lang in zip(drawn, drawn_in, strict=True) if lang == english]
        pairs = [(ex, english) for ex in english_copies(in_english)]
        pairs += [(ex, lang) for ex, lang in zip(drawn, drawn_in, strict=True) if lang != english]
    else:
        languages = [english] if translate is None or translate.keep_english else []
        languages += list(translate.languages) if translate else []
        for lang in languages:
            if lang == english:
                pairs += [(ex, lang) for ex in english_copies(load(spec, "train", lang, limit))]
            else:
                source = translated_spec(spec, lang, translate, data_dir)
                pairs += [(ex, lang) for ex in load(source, "train", lang, limit)]
    if budget is not None:
        held = Counter(lang for _, lang in pairs)
        detail = ", ".join(f"{lang} {n}" for lang, n in held.items())
        check_budget(arm, spec.name, len(pairs), budget.examples, detail)
        pairs = subset(pairs, budget.examples, data_seed)
    return [ex for ex, _ in pairs], Counter(lang for _, lang in pairs)
