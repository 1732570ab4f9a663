"""Parallel sentences for the alignment analysis: the embedded Bible, Tatoeba and BUCC 2018.

`load_parallel(corpus, source_lang, target_lang)` gives a `ParallelCorpus`: a source-language pool, a
target-language pool and the gold translation pairs between them (row indices). For retrieval-style
measures `aligned()` gives the gold pairs' texts, row i a translation of row i; for mining the pools also
hold sentences whose translation is not in the other pool (distractors), where the corpus has them.

Every corpus is read from its evaluation split, the one the benchmark scores on:

- "bible": the embedded benchmark (`tasks/bible.py`), any two different languages of `BIBLE_LANGUAGES`
  in either direction (de-fr works as well as de-en). Gold = the verses of bible-retrieval's "test" split
  (held-out chapters), the same verses in every language, so the pairs are exactly the examples of
  bible-retrieval with the same seed and `examples` as limit. Pools = those verses plus bible-mining's
  one-sided verses of the same split, seed and limit: up to twice as many other test verses as gold
  pairs, dealt alternately to the source-only and the target-only side (so up to `examples` distractors
  per side), leaving out verses that read exactly like one already taken (formulaic verses), so no true
  translation hides among the distractors. With `examples=None` the gold is the whole test split (2,928
  verses with seed 0) and no verse is left to be a distractor. `seed` also draws the chapter split, as
  everywhere in the Bible benchmark.
  Ids are verse ids "<book>.<chapter>.<verse>", the same on both sides.
- "tatoeba": the registry task "tatoeba", split "test" (its only split; google/xtreme's "validation"
  configs or LASER's `tatoeba.<iso3>-eng.{<iso3>,eng}` files under data_dir), pairs (xx, en) for the
  task's languages, or (en, xx) swapped. Gold = the diagonal; the pools hold the gold sentences only
  (Tatoeba has no distractors); `examples` takes a seeded subset of the rows (original order). The
  English side can repeat a sentence across rows. Ids are the task's example ids, the same on both sides.
- "bucc": the registry task "bucc2018", split "test" (the release's `<xx>-en.training` files: its gold is
  public, so the benchmark scores on it; "dev" = `.sample` only tunes the mining threshold), pairs (xx,
  en) for de, fr, ru, zh, or (en, xx) swapped. From the original files under data_dir the pools are the
  whole candidate pools and the gold the `.gold` id pairs; google/xtreme's `bucc18.<xx>` hub configs hold
  only the gold pairs, so read from the hub (or a hub mirror) the pools are the gold sentences only, with
  no distractor, and mining on them is degenerate. `examples` keeps a seeded subset of the gold pairs
  (`sources.subset`) and the same share of each pool's non-gold sentences (seeded, rounded to nearest),
  so the distractor-to-gold ratio stays that of the full corpus; the sentences of the gold pairs left out
  are dropped. Ids are the release's sentence ids ("de-000123", "en-000456").

Pools keep the corpus's order (verse order, row order, file order); `gold` is sorted by source row, then
target row. Data that cannot be found (no hub mirror, offline, no original file) fails with the sources
layer's error, which says what to pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xstilts.errors import XstiltsError

PIVOT = "en"


@dataclass(frozen=True)
class ParallelCorpus:
    """Two sentence pools and the gold translation pairs between them (see the module docstring)."""

    corpus: str  # "bible" | "tatoeba" | "bucc"
    source_lang: str
    target_lang: str
    source: list[str]  # source-language pool (gold sources, plus distractors where the corpus has them)
    target: list[str]  # target-language pool
    gold: list[tuple[int, int]]  # (row in source, row in target), sorted by source row
    split: str = ""  # the split the data was read from
    source_ids: list[str] = field(default_factory=list)  # the corpus's id of each source row
    target_ids: list[str] = field(default_factory=list)  # the corpus's id of each target row

    def aligned(self) -> tuple[list[str], list[str]]:
        """The gold pairs' texts: (sources, targets), row i of one a translation of row i of the other."""
        return [self.source[i] for i, _ in self.gold], [self.target[j] for _, j in self.gold]

    def aligned_ids(self) -> tuple[list[str], list[str]]:
        """The gold pairs' ids, in the order of `aligned()`."""
        return [self.source_ids[i] for i, _ in self.gold], [self.target_ids[j] for _, j in self.gold]

    def swapped(self) -> ParallelCorpus:
        """The same corpus read the other way round (target -> source)."""
        return _corpus(
            self.corpus,
            self.target_lang,
            self.source_lang,
            self.split,
            list(zip(self.target_ids, self.target, strict=True)),
            list(zip(self.source_ids, self.source, strict=True)),
            [(j, i) for i, j in self.gold],
        )


def _corpus(
    name: str,
    source_lang: str,
    target_lang: str,
    split: str,
    source: list[tuple[str, str]],
    target: list[tuple[str, str]],
    gold: list[tuple[int, int]],
) -> ParallelCorpus:
    """A ParallelCorpus from (id, text) pools and row pairs; gold sorted by source row."""
    return ParallelCorpus(
        corpus=name,
        source_lang=source_lang,
        target_lang=target_lang,
        source=[text for _, text in source],
        target=[text for _, text in target],
        gold=sorted(gold),
        split=split,
        source_ids=[sentence_id for sentence_id, _ in source],
        target_ids=[sentence_id for sentence_id, _ in target],
    )


# --------------------------------------------------------------------------------------- the Bible

BIBLE_SPLIT = "test"  # bible-retrieval's only split, and bible-mining's scored one


def _bible_pairs() -> list[tuple[str, str]]:
    from xstilts.tasks.bible import BIBLE_LANGUAGES

    return [(a, b) for a in BIBLE_LANGUAGES for b in BIBLE_LANGUAGES if a != b]


def _load_bible(
    source_lang: str, target_lang: str, *, examples, seed, data_dir, hub_mirror
) -> ParallelCorpus:
    from xstilts.tasks import bible

    # bible-mining's plan: its gold is bible-retrieval's plan of the same split, seed and limit.
    (plan,) = bible.example_plan("bible-mining", BIBLE_SPLIT, seed, examples)
    source_verses, target_verses = bible.load_verses(source_lang), bible.load_verses(target_lang)
    source_keys = sorted(plan["gold"] + plan["source_only"])
    target_keys = sorted(plan["gold"] + plan["target_only"])
    source_row = {key: row for row, key in enumerate(source_keys)}
    target_row = {key: row for row, key in enumerate(target_keys)}
    return _corpus(
        "bible",
        source_lang,
        target_lang,
        BIBLE_SPLIT,
        [(bible.verse_id(key), source_verses[key]) for key in source_keys],
        [(bible.verse_id(key), target_verses[key]) for key in target_keys],
        [(source_row[key], target_row[key]) for key in plan["gold"]],
    )


# ------------------------------------------------------------------------------ Tatoeba and BUCC


def _task_pairs(task: str) -> list[tuple[str, str]]:
    from xstilts.tasks.registry import get_task

    langs = [lang for lang in get_task(task).languages if lang != PIVOT]
    return sorted([(lang, PIVOT) for lang in langs] + [(PIVOT, lang) for lang in langs])


EVAL_SPLIT = "test"  # the split the pipeline scores retrieval and mining on (pipeline/runner.py)


def _eval_split(task: str) -> str:
    from xstilts.tasks.registry import get_task

    spec = get_task(task)
    if EVAL_SPLIT not in spec.splits:  # pragma: no cover - a registry change this module must follow
        raise XstiltsError(f"task {task} has no {EVAL_SPLIT} split (splits: {', '.join(spec.splits)})")
    return EVAL_SPLIT


def _oriented(load_from_english_side):
    """A loader of (xx, en) made to answer (en, xx) too, by swapping."""

    def load(source_lang: str, target_lang: str, **kwargs) -> ParallelCorpus:
        if source_lang == PIVOT:
            return load_from_english_side(target_lang, **kwargs).swapped()
        return load_from_english_side(source_lang, **kwargs)

    return load


def _load_tatoeba(lang: str, *, examples, seed, data_dir, hub_mirror) -> ParallelCorpus:
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples

    split = _eval_split("tatoeba")
    rows = load_examples(
        get_task("tatoeba"), split, lang, seed=seed, limit=examples, data_dir=data_dir, hub_mirror=hub_mirror
    )
    return _corpus(
        "tatoeba",
        lang,
        PIVOT,
        split,
        [(row["id"], row["text"]) for row in rows],
        [(row["id"], row["translation"]) for row in rows],
        [(i, i) for i in range(len(rows))],
    )


def _proportional(ids: list[str], share: float, rng: np.random.Generator) -> set[str]:
    """A seeded subset of round(share * len(ids)) of `ids`."""
    keep = min(len(ids), int(np.floor(share * len(ids) + 0.5)))
    return {ids[i] for i in rng.choice(len(ids), size=keep, replace=False)}


def _load_bucc(lang: str, *, examples, seed, data_dir, hub_mirror) -> ParallelCorpus:
    from xstilts.tasks.registry import get_task
    from xstilts.tasks.sources import load_examples, subset

    split = _eval_split("bucc2018")
    (problem,) = load_examples(
        get_task("bucc2018"), split, lang, seed=seed, data_dir=data_dir, hub_mirror=hub_mirror
    )
    source, target = problem["source"], problem["target"]
    gold = [tuple(pair) for pair in problem["gold"]]
    if examples is not None and examples < len(gold):
        share = examples / len(gold)
        in_gold_source = {s for s, _ in gold}
        in_gold_target = {t for _, t in gold}
        gold = subset(gold, examples, seed)
        rng = np.random.default_rng([seed, 0xB0CC])
        keep_source = {s for s, _ in gold} | _proportional(
            [s for s in source if s not in in_gold_source], share, rng
        )
        keep_target = {t for _, t in gold} | _proportional(
            [t for t in target if t not in in_gold_target], share, rng
        )
        source = {s: text for s, text in source.items() if s in keep_source}
        target = {t: text for t, text in target.items() if t in keep_target}
    source_row = {sentence_id: row for row, sentence_id in enumerate(source)}
    target_row = {sentence_id: row for row, sentence_id in enumerate(target)}
    return _corpus(
        "bucc",
        lang,
        PIVOT,
        split,
        list(source.items()),
        list(target.items()),
        [(source_row[s], target_row[t]) for s, t in gold],
    )


# ---------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Corpus:
    """One parallel corpus: where its pairs come from and how to load one."""

    name: str
    description: str
    pairs: Callable[[], list[tuple[str, str]]]  # every (source, target) it has data for
    load: Callable[..., ParallelCorpus]  # (source, target, *, examples, seed, data_dir, hub_mirror)
    any_pair: bool = False  # every two of its languages are parallel (errors list languages, not pairs)


CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        Corpus(
            "bible",
            "embedded Bible verses (bible-retrieval test split), any two Bible languages; mining pools "
            "from bible-mining's one-sided verses",
            _bible_pairs,
            _load_bible,
            any_pair=True,
        ),
        Corpus(
            "tatoeba",
            "Tatoeba (the tatoeba task's test split), xx-en; pools = the gold pairs",
            lambda: _task_pairs("tatoeba"),
            _oriented(_load_tatoeba),
        ),
        Corpus(
            "bucc",
            "BUCC 2018 (test = the release's training files), xx-en for de, fr, ru, zh; full candidate pools "
            "from the original files, gold pairs only from the hub",
            lambda: _task_pairs("bucc2018"),
            _oriented(_load_bucc),
        ),
    )
}


def _get(corpus: str) -> Corpus:
    try:
        return CORPORA[corpus]
    except KeyError:
        raise XstiltsError(
            f"unknown parallel corpus {corpus!r}; valid corpora: {', '.join(sorted(CORPORA))}"
        ) from None


def available_pairs(
    corpus: str, data_dir: str | Path | None = None, hub_mirror: str | Path | None = None
) -> list[tuple[str, str]]:
    """Every (source, target) language pair `corpus` has parallel data for, sorted.

    The pairs are fixed by the corpus (the Bible's languages, the registry task's languages); `data_dir`
    and `hub_mirror` are accepted so the call matches `load_parallel`, but no corpus's pairs depend on
    them: whether a pair's files can be found is only known when loading it.
    """
    return list(_get(corpus).pairs())


def _no_data(spec: Corpus, source_lang: str, target_lang: str) -> XstiltsError:
    pair = f"{source_lang}-{target_lang}"
    pairs = spec.pairs()
    if spec.any_pair:
        languages = sorted({lang for p in pairs for lang in p})
        return XstiltsError(
            f"no parallel data for the pair {pair} in {spec.name}; available {spec.name} languages (any "
            f"two different ones, either direction): {', '.join(languages)}"
        )
    available = set(pairs)
    # Pairs available both ways are listed once, English second: "de-en" stands for de-en and en-de.
    both = [(a, b) for a, b in pairs if (b, a) in available and (b == PIVOT or (a != PIVOT and a < b))]
    one_way = [(a, b) for a, b in pairs if (b, a) not in available]
    listed = [f"{a}-{b}" for a, b in both] + [f"{a}-{b} (this direction only)" for a, b in one_way]
    either = " (either direction)" if both else ""
    return XstiltsError(
        f"no parallel data for the pair {pair} in {spec.name}; available pairs{either}: {', '.join(listed)}"
    )


def load_parallel(
    corpus: str,
    source_lang: str,
    target_lang: str,
    *,
    examples: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    hub_mirror: str | Path | None = None,
) -> ParallelCorpus:
    """The parallel data of one language pair of `corpus` (see the module docstring for each corpus).

    `examples` caps the number of gold pairs (a seeded subset, the same for the same seed); the pools
    keep their distractors as the corpus defines (Bible) or in proportion (BUCC). `data_dir` and
    `hub_mirror` say where Tatoeba's and BUCC's files are (original files first, as in `tasks/sources.py`).
    """
    spec = _get(corpus)
    if (source_lang, target_lang) not in spec.pairs():
        raise _no_data(spec, source_lang, target_lang)
    if examples is not None and (isinstance(examples, bool) or int(examples) < 1):
        raise XstiltsError(f"examples must be a positive number of sentence pairs, got {examples}")
    if int(seed) < 0:
        raise XstiltsError(f"seed must be >= 0, got {seed}")
    return spec.load(
        source_lang,
        target_lang,
        examples=None if examples is None else int(examples),
        seed=int(seed),
        data_dir=data_dir,
        hub_mirror=hub_mirror,
    )
