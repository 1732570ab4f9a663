"""Experiment configuration: a pydantic schema read from YAML, with errors that name file, line and field."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from xstilts.errors import XstiltsError

NONE_TASK = "none"
MAX_SEED = 2**32 - 1  # numpy's and torch's seeding range

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def _unique(values: list | None, what: str) -> list | None:
    """`values` when no entry repeats: a repeated language, seed or task would silently run twice."""
    repeated = sorted({str(v) for v in values or [] if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} {', '.join(repeated)} listed more than once; list each once")
    return values


def _languages_list(languages: list[str] | None, default: str) -> list[str] | None:
    """None (the default) or a non-empty list without repeats."""
    if languages is not None and not languages:
        raise ValueError(f"an empty language list; leave the field out for {default}")
    return _unique(languages, "language")


_SAFE_COMPONENT = re.compile(r"^[^./\\\x00][^/\\\x00]*$")  # no separator, not '.', '..' or hidden


def safe_component(value: str, what: str) -> str:
    """`value` names one folder inside `output_dir`: no separators, no `..`, no leading dot (temp names)."""
    if not _SAFE_COMPONENT.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be a single folder name inside output_dir: no '/' or '\\', not "
            "starting with '.' (so never '.', '..' or a path)"
        )
    return value


def _task(name: str):
    """Registry lookup whose unknown-name error pydantic can place on a field."""
    from xstilts.tasks.registry import get_task

    try:
        return get_task(name)
    except XstiltsError as err:
        raise ValueError(str(err)) from None


def _tasks_in_role(names: list[str], role: str) -> list[str]:
    """`names` when each is a registry task that can play `role` ("intermediate" or "target")."""
    for name in names:
        if role not in _task(name).roles:
            article = "an" if role[0] in "aeiou" else "a"
            raise ValueError(f"task {name!r} is not {article} {role} task")
    return names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlainStrategy(Strict):
    """Plain training: the task loss alone (the default; names it explicitly where a mixture overrides)."""

    strategy: Literal["plain"]


class _EmbeddingPerturbation(Strict):
    """A perturbation of each example's word-embedding lookup, bounded per example (padding and special
    tokens are never perturbed)."""

    norm: Literal["l2", "linf"] = Field("l2", description="per-example norm of the ball")
    radius: float = Field(1.0, ge=0, description="the ball's radius (epsilon); 0: plain training")


class FGMConfig(_EmbeddingPerturbation):
    """FGM (Miyato et al. 2017): clean loss + the loss at one normalised gradient step to the ball's edge."""

    strategy: Literal["fgm"]


class PGDConfig(_EmbeddingPerturbation):
    """PGD (Madry et al. 2018): `steps` projected ascent steps, then clean loss + loss at the perturbation."""

    strategy: Literal["pgd"]
    steps: int = Field(3, ge=1, le=64, description="ascent steps (K)")
    step_size: float = Field(0.3, ge=0, description="each ascent step's length (alpha)")


class FreeLBConfig(_EmbeddingPerturbation):
    """FreeLB (Zhu et al. 2020): K ascent steps whose parameter gradients are averaged ("free" training)."""

    strategy: Literal["freelb"]
    steps: int = Field(3, ge=1, le=64, description="ascent steps (K); K forward/backward passes")
    step_size: float = Field(0.1, ge=0, description="adv-lr: each ascent step's length")
    init_radius: float = Field(
        0.1, ge=0, description="adv-init-mag: random start, scaled by 1/sqrt(length x hidden) for l2"
    )
    radius: float | None = Field(
        None, ge=0, description="adv-max-norm: projection radius; None: unbounded (FreeLB's 0)"
    )


class SMARTConfig(Strict):
    """SMART (Jiang et al. 2020): symmetric-KL smoothness regulariser, optional Bregman proximal point."""

    strategy: Literal["smart"]
    alpha: float = Field(1.0, ge=0, description="weight of the smoothness term (lambda_s); 0: plain")
    noise_scale: float = Field(1e-5, gt=0, description="std of the random start")
    step_size: float = Field(1e-3, ge=0, description="the ascent step (eta)")
    norm: Literal["l2", "linf"] = Field("l2", description="per-token normalisation of the ascent")
    radius: float = Field(1.0, ge=0, description="per-token size of the final perturbation; 0: plain")
    bregman: float = Field(0.0, ge=0, description="weight of the proximal-point term (mu); 0: off")
    bregman_momentum: float = Field(0.99, ge=0, lt=1, description="beta of the momentum copy")


class _Substitution(Strict):
    """Word substitutions through bilingual lexicons (English -> other languages) applied to copies of
    the English training examples."""

    lexicon: Literal["bible", "dictd"] = "bible"
    dictionaries: dict[str, Path] = Field(
        default_factory=dict, description="dictd: language -> .index file (English -> language)"
    )
    alignment_verses: int = Field(3000, ge=10, description="Bible verses word-aligned per language pair")
    word_probability: float = Field(0.3, ge=0, le=1, description="chance each word is substituted")


class CodeMixedConfig(_Substitution):
    """Code-mixed adversarial training (CAT-like, Tan & Joty 2021): English examples plus code-mixed
    copies, words translated into the embedded languages."""

    strategy: Literal["code-mixed"]
    embedded_languages: list[str] = Field(min_length=1)
    sentence_probability: float = Field(
        0.5, ge=0, le=1, description="chance an example gets a code-mixed copy; 0: plain training"
    )


class SmoothingConfig(_Substitution):
    """Randomised smoothing by substitution (Robust-XLT-like, Huang et al. 2021): `copies` noisy copies of
    each example, words replaced by lexicon neighbours (translations and round-trip synonyms)."""

    strategy: Literal["smoothing"]
    languages: list[str] = Field(min_length=1, description="languages whose lexicons give neighbours")
    copies: int = Field(1, ge=0, le=16, description="noisy copies per example; 0: plain training")
    word_probability: float = Field(0.15, ge=0, le=1, description="chance each word is substituted")


AdversarialConfig = Annotated[
    PlainStrategy | FGMConfig | PGDConfig | FreeLBConfig | SMARTConfig | CodeMixedConfig | SmoothingConfig,
    Field(discriminator="strategy"),
]
EMBEDDING_STRATEGIES = ("fgm", "pgd", "freelb", "smart")  # train.adversarial: at the loop's training step
DATA_STRATEGIES = ("code-mixed", "smoothing")  # robustness.augment: copies of the training examples


class PhaseConfig(Strict):
    """Hyper-parameters of one training phase (intermediate or target)."""

    #: fields that change how a training is watched or saved, never what it computes
    NOT_RESULTS: ClassVar[frozenset[str]] = frozenset({"log_every", "checkpoint_every"})

    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="overrides epochs when set")
    learning_rate: float = Field(2e-5, gt=0)
    head_learning_rate: float | None = Field(
        None, gt=0, description="task heads' rate; default: learning_rate"
    )
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    batch_size: int = Field(32, gt=0)
    grad_accumulation: int = Field(1, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_length: int | None = Field(None, gt=8, description="defaults to the task's max_length")
    eval_every: int | None = Field(
        None, gt=0, description="optimizer steps between dev evaluations; default once per epoch"
    )
    patience: int | None = Field(
        None, gt=0, description="stop after this many dev evaluations without improvement (jiant: 30)"
    )
    train_examples: int | None = Field(None, gt=0, description="cap on training examples")
    dev_examples: int | None = Field(None, gt=0, description="a seeded subset of the dev set (jiant: 500)")
    dev_seed: int = Field(0, ge=0, description="seed of the dev subset (the same for every run seed)")
    checkpoint_every: int | None = Field(
        1000, gt=0, description="optimizer steps between exact training checkpoints (resume after a kill)"
    )
    eval_batch_size: int = Field(64, gt=0)
    log_every: int = Field(
        10,
        gt=0,
        description="optimizer steps between training-loss reads (the progress bar shows their mean); the "
        "losses stay on the device in between, so the loop does not wait for the device every step",
    )
    compile: bool = Field(
        False,
        description="torch.compile the encoder before training (compiles on the first steps and again for "
        "new batch shapes; may change the last bits of the weights, so runs with and without it differ)",
    )
    adversarial: AdversarialConfig | None = Field(
        None, description="adversarial / robust training strategy of this phase; default plain training"
    )

    def identity(self) -> dict:
        """The fields that determine the trained weights (what a fingerprint hashes). Without a strategy
        the field is left out, so the keys of runs made before it existed stay the same."""
        identity = self.model_dump(mode="json", exclude=set(self.NOT_RESULTS))
        if identity.get("adversarial") is None:
            identity.pop("adversarial", None)
        return identity

    @property
    def strategy(self) -> str:
        """The name of this phase's training strategy ("plain" by default)."""
        return self.adversarial.strategy if self.adversarial is not None else "plain"


class MLMConfig(Strict):
    """Continued multilingual masked-LM mixed into intermediate training (the paper's baseline)."""

    text: str | list[Path] = Field(
        "bible", description='"bible" (offline: verses of all languages) or text files / a directory'
    )
    languages: list[str] | None = Field(None, description="for bible text; default: every Bible language")
    examples: int = Field(20000, gt=0, description="lines of raw text sampled")
    max_length: int = Field(128, gt=8)
    batch_size: int | None = Field(None, gt=0)
    mask_probability: float = Field(0.15, gt=0, lt=1)

    @field_validator("languages")
    @classmethod
    def _languages_listed_once(cls, languages: list[str] | None) -> list[str] | None:
        return _languages_list(languages, "every Bible language")


class TranslateConfig(Strict):
    """Train an intermediate task on its translations (translate-train) instead of, or next to, English."""

    languages: list[str] = Field(min_length=1)
    files: dict[str, str] = Field(
        default_factory=dict,
        description="task -> path template under data_dir with {lang}, in the task's train-file format",
    )
    formats: dict[str, str] = Field(
        default_factory=dict,
        description="task -> local format of its translation files (default: the task's training files'), "
        "e.g. XTREME's XNLI translate-train: tsv:original_a,original_b,sentence1,sentence2,label",
    )
    keep_english: bool = Field(True, description="without `draw`: train on English next to every translation")
    draw: Literal["multilingual", "both"] | None = Field(
        None,
        description="each English example is used once, in one language drawn for it: one of `languages` "
        "(multilingual) or English or one of them (both); the data size stays the English one",
    )
    english_share: float = Field(
        0.5, gt=0, lt=1, description="with draw: both, the chance that an example stays in English"
    )

    @field_validator("languages")
    @classmethod
    def _languages_listed_once(cls, languages: list[str]) -> list[str]:
        return _unique(languages, "language")

    @model_validator(mode="after")
    def _share_needs_both(self):
        if "english_share" in self.model_fields_set and self.draw != "both":
            raise ValueError("english_share is the share of English examples of draw: both; set draw: both")
        return self

    def identity(self) -> dict:
        """What changes the training data; fields added later are left out when unset (older keys stay)."""
        identity = self.model_dump(mode="json")
        if identity["draw"] is None:
            identity.pop("draw")
            identity.pop("english_share")
        if not identity["formats"]:
            identity.pop("formats")
        return identity


class BudgetConfig(Strict):
    """A matched budget: every intermediate training of the run uses exactly this many training examples
    (per task) and optimizer steps, so arms that differ in their data's languages see as much of it."""

    examples: int = Field(gt=0, description="training examples each intermediate task draws")
    steps: int = Field(gt=0, description="optimizer steps of every intermediate training")


class MixtureConfig(Strict):
    """Several intermediate tasks trained together, one batch of one task per step (jiant-style)."""

    tasks: list[str] = Field(min_length=1)
    sampler: Literal["uniform", "proportional", "temperature"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    heads: dict[str, str] = Field(
        default_factory=dict, description="task -> head name; tasks naming the same head share it"
    )
    batch_size: dict[str, int] = Field(default_factory=dict, description="per-task batch size")
    max_length: dict[str, int] = Field(default_factory=dict, description="per-task max length")
    mlm: MLMConfig | None = None
    translate: TranslateConfig | None = None
    adversarial: AdversarialConfig | None = Field(
        None, description="this intermediate training's strategy (replaces intermediate_training's)"
    )
    target_adversarial: AdversarialConfig | None = Field(
        None, description="the strategy of the targets trained after it (replaces target_training's)"
    )

    def identity(self) -> dict:
        """What determines the intermediate weights: not the strategy of the targets after it (two mixtures
        that differ only there share one intermediate training), nor unset strategies (old keys stay)."""
        identity = self.model_dump(mode="json", exclude={"target_adversarial"})
        if identity.get("adversarial") is None:
            identity.pop("adversarial", None)
        if self.translate is not None:
            identity["translate"] = self.translate.identity()
        return identity

    @field_validator("tasks")
    @classmethod
    def _tasks_are_intermediate(cls, names: list[str]) -> list[str]:
        return _tasks_in_role(_unique(names, "task"), "intermediate")

    @field_validator("adversarial")
    @classmethod
    def _strategy_serves_tasks(cls, strategy, info: ValidationInfo):
        check_strategy(strategy, info.data.get("tasks") or [], "this mixture")
        return strategy

    @field_validator("heads", "batch_size", "max_length")
    @classmethod
    def _keys_are_tasks(cls, mapping: dict, info: ValidationInfo) -> dict:
        unknown = set(mapping) - set(info.data.get("tasks") or [])
        if unknown:
            raise ValueError(f"names tasks that are not in this mixture's tasks: {sorted(unknown)}")
        return mapping


class RetrievalConfig(Strict):
    """Retrieval and mining targets, scored on the encoder (see `evaluate.encoder_scores`)."""

    layer: int | None = Field(None, ge=0, description="hidden_states index; defaults to the task's")
    pooling: Literal["mean", "first"] | None = None
    direction: Literal["en->xx", "xx->en"] | None = Field(
        None, description="retrieval search direction; default the task's (Tatoeba: en->xx, as XTREME)"
    )
    allow_gold_only_bucc: bool = Field(
        False, description="mine pools that hold only gold pairs (the hub's bucc18); not comparable"
    )
    examples: int = Field(1000, gt=0)
    batch_size: int = Field(64, gt=0)


class WordsConfig(Strict):
    """Word-level alignment: where the word pairs come from."""

    source: Literal["alignment", "dictd", "none"] = Field(
        "alignment", description="word alignment of the parallel text (eflomal), dictd dictionaries, or off"
    )
    dictionaries: dict[str, Path] = Field(
        default_factory=dict, description="language -> dictd .index file (English -> language)"
    )
    max_pairs: int = Field(1000, gt=0)
    min_count: int = Field(3, gt=0, description="alignment links a word pair needs")
    sentences: int | None = Field(
        None, ge=2, description="parallel sentences to word-align; default: the analysis sentences"
    )
    k: int = Field(10, gt=0, description="CSLS neighbourhood")


class AlignConfig(Strict):
    """`xstilts align`: which parallel data, layers and measures. Not part of the run's fingerprint:
    changing it re-measures alignment without retraining."""

    corpus: Literal["bible", "tatoeba", "bucc"] = "bible"
    languages: list[str] | None = Field(
        None, description="languages paired with `pivot`; default: the run's languages, else six"
    )
    pivot: str = "en"
    pairs: list[str] = Field(default_factory=list, description="extra pairs 'de-fr' (any two languages)")
    examples: int = Field(500, ge=2, description="parallel sentences per pair")
    pooling: Literal["mean", "first"] = "mean"
    center: bool = Field(False, description="subtract each language's mean vector before measuring")
    max_length: int = Field(128, gt=0)
    batch_size: int = Field(64, gt=0)
    layer: int | None = Field(None, ge=0, description="focus layer of intervals and correlations")
    mining: bool = True
    words: WordsConfig = Field(default_factory=WordsConfig)
    n_boot: int = Field(1000, ge=10)

    @field_validator("languages")
    @classmethod
    def _languages_listed_once(cls, languages: list[str] | None) -> list[str] | None:
        return _languages_list(languages, "the run's languages")

    @field_validator("pairs")
    @classmethod
    def _pairs_well_formed(cls, pairs: list[str]) -> list[str]:
        for pair in pairs:
            parts = pair.split("-")
            if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
                raise ValueError(f"pair {pair!r} is not of the form 'xx-yy' with two different languages")
        return pairs


NOISE_KINDS = ("swap", "delete", "insert", "homoglyph", "diacritics")  # robustness.noise.NOISE_KINDS


class AttackSpec(Strict):
    """One attack: a transformation, its constraints and a search (TextAttack's decomposition). Every
    attack is also run as its random baseline: the same candidates, chosen at random, same word budget."""

    transformation: Literal["code-mixing", "phrase", "noise", "mlm"] = Field(
        description="code-mixing: word translation through lexicons; phrase: aligned phrases of the "
        "example's versions in other languages; noise: character noise; mlm: masked-LM substitutes"
    )
    languages: list[str] | None = Field(
        None, description="languages this attack runs on; default: the attack section's"
    )
    search: Literal["greedy", "beam"] = "greedy"
    importance: Literal["delete", "unk"] = Field(
        "delete", description="greedy word importance: the word deleted, or replaced by the unk token"
    )
    beam_width: int = Field(4, gt=0)
    embedded_languages: list[str] | None = Field(
        None, description="languages mixed in (code-mixing, phrase); default: the other attacked languages"
    )
    lexicon: Literal["bible", "dictd"] = Field("bible", description="where word translations come from")
    dictionaries: dict[str, Path] = Field(
        default_factory=dict, description="dictd: language -> .index file (English -> language)"
    )
    alignment_verses: int = Field(
        3000, ge=10, description="Bible verses word-aligned per language pair (lexicons, phrase statistics)"
    )
    noise: list[Literal[NOISE_KINDS]] = Field(default_factory=lambda: list(NOISE_KINDS))
    mlm_candidates: int = Field(8, gt=0, description="mlm: substitutes per word (top-k)")
    mlm_min_embedding_cosine: float = Field(
        0.3, ge=-1, le=1, description="mlm: word-embedding cosine a substitute needs to the word"
    )
    max_words_fraction: float = Field(0.25, gt=0, le=1, description="of the words of the attacked fields")
    skip_stop_words: bool = Field(True, description="leave the input language's stop words alone")
    min_similarity: float | None = Field(
        None, ge=-1, le=1, description="sentence-embedding cosine a perturbed text needs to the original"
    )
    similarity_encoder: str | None = Field(
        None, description="encoder of that cosine (mean pooled, last layer); default: the run's model"
    )
    query_budget: int = Field(300, gt=0, description="victim queries per example")


class AttackConfig(Strict):
    """`xstilts attack`: attacks on every target checkpoint of a run. Not part of the run's fingerprint:
    changing it re-attacks without retraining."""

    attacks: dict[str, AttackSpec] = Field(
        default_factory=lambda: {"code-mixing": AttackSpec(transformation="code-mixing")}
    )
    targets: list[str] | None = Field(None, description="default: the run's targets an attack can serve")
    languages: list[str] | None = Field(None, description="default: the run's languages")
    examples: int = Field(50, gt=0, description="test examples attacked per language")
    fields: list[str] | None = Field(None, description="fields perturbed; default: all text fields")
    pair_language: str | None = Field(
        None, description="generalised setting: the fields not perturbed are taken in this language"
    )
    batch_size: int = Field(64, gt=0)
    seed: int = Field(0, ge=0)
    stability: bool = Field(True, description="measure alignment stability under attack")
    n_boot: int = Field(1000, ge=10)

    @field_validator("attacks")
    @classmethod
    def _attack_names(cls, attacks: dict) -> dict:
        if not attacks:
            raise ValueError("name at least one attack")
        for name in attacks:
            safe_component(str(name), "attack name")  # its adversarial examples are a folder named after it
        return attacks

    @field_validator("languages")
    @classmethod
    def _languages_listed_once(cls, languages: list[str] | None) -> list[str] | None:
        return _languages_list(languages, "the run's languages")


def check_kind_served(strategy, kind, what: str) -> None:
    """A data strategy substitutes words of the kind's `substitution_fields`: none is a clear error."""
    from xstilts.tasks.kinds import KINDS

    if strategy.strategy in DATA_STRATEGIES and kind.trains and not kind.substitution_fields:
        served = sorted(name for name, known in KINDS.items() if known.substitution_fields)
        raise ValueError(
            f"{what}: strategy {strategy.strategy} cannot train kind {kind.name} (no words to substitute); "
            f"it serves the kinds {', '.join(served)}"
        )


def check_strategy(strategy, tasks: list[str], where: str) -> None:
    """A clear error when `strategy` cannot train one of `tasks`: a data strategy needs words to substitute
    (the kind's `substitution_fields`) and lexicons for its languages."""
    from xstilts.tasks.bible import BIBLE_LANGUAGES
    from xstilts.tasks.kinds import get_kind

    if strategy is None or strategy.strategy not in DATA_STRATEGIES:
        return
    for name in tasks:
        check_kind_served(strategy, get_kind(_task(name).kind), f"{where}: task {name!r}")
    languages = getattr(strategy, "embedded_languages", None) or strategy.languages
    if strategy.lexicon == "bible":
        unknown = sorted(set(languages) - set(BIBLE_LANGUAGES))
        valid = f"the Bible's languages: {', '.join(BIBLE_LANGUAGES)}"
    else:
        unknown = sorted(set(languages) - set(strategy.dictionaries) - {"en"})
        valid = f"the languages of its dictionaries: {', '.join(sorted(strategy.dictionaries)) or 'none'}"
    if unknown:
        raise ValueError(
            f"{where}: strategy {strategy.strategy} has no {strategy.lexicon} lexicon for "
            f"{', '.join(unknown)}; {valid}"
        )


def _set_strategy(strategy, name: str) -> dict:
    """{name: the strategy's settings} when one is set, else nothing (keys of older runs stay)."""
    return {name: strategy.model_dump(mode="json")} if strategy is not None else {}


class ExperimentConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str
    output_dir: Path = Path("runs")
    # mixtures come before `intermediate` so that its validator can see them
    mixtures: dict[str, MixtureConfig] = Field(
        default_factory=dict, description="named multi-task / MLM / translated intermediate trainings"
    )
    intermediate: list[str] = Field(
        default_factory=lambda: [NONE_TASK],
        min_length=1,
        description="'none', intermediate tasks of the registry, or names of `mixtures`",
    )
    targets: list[str] = Field(min_length=1)
    languages: list[str] | None = Field(
        None, description="zero-shot languages; default: each target's languages in `suite`"
    )
    suite: Literal["xtreme", "xtreme-r"] = Field(
        "xtreme",
        description="whose language lists a target is evaluated on by default (XTREME-R adds languages to "
        "udpos, panx, tatoeba and xquad; targets outside the suite: all of their registry languages)",
    )
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    test_examples: int | None = Field(None, gt=0, description="cap on test examples per language")
    freeze_embeddings: bool = False
    head_pooling: Literal["first", "mean"] = Field(
        "first", description="what task heads read: <s> or the mean"
    )
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    save_target_checkpoints: bool = True
    intermediate_training: PhaseConfig = Field(default_factory=PhaseConfig)
    target_training: PhaseConfig = Field(default_factory=PhaseConfig)
    target_overrides: dict[str, PhaseConfig] = Field(default_factory=dict)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    budget: BudgetConfig | None = Field(
        None, description="matched budget of every intermediate training (examples per task, steps)"
    )
    domain_shifts: list[str] = Field(
        default_factory=list,
        description="registry domain shifts (xstilts tasks --domain-shifts): their target trains on the "
        "in-domain data and is scored on the in-domain and out-of-domain test sets",
    )
    data_dir: Path | None = Field(
        None, description="local copies in the original formats (XTREME's download layout); else the hub"
    )
    hub_mirror: Path | None = Field(None, description="a directory of cloned hub dataset repos")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory (large models)")
    write_predictions: bool = Field(
        False, description="write test predictions in the XTREME submission layout under the run dir"
    )
    align: AlignConfig = Field(default_factory=AlignConfig, description="`xstilts align` settings")
    attack: AttackConfig = Field(default_factory=AttackConfig, description="`xstilts attack` settings")
    tracking: Literal["none", "tensorboard", "mlflow"] = Field(
        "none",
        description="log loss, learning rate, throughput and dev metrics per step of every training: "
        "TensorBoard under <run dir>/logs (pip install tensorboard), or MLflow (pip install mlflow)",
    )

    @field_validator("name")
    @classmethod
    def _name_is_one_folder(cls, name: str) -> str:
        return safe_component(name, "run name")  # the run directory is output_dir/name

    @field_validator("mixtures", mode="before")
    @classmethod
    def _mixture_names_free(cls, mixtures: dict) -> dict:
        from xstilts.tasks.registry import TASKS

        for name, mixture in (mixtures or {}).items():
            safe_component(str(name), "mixture name")  # checkpoints and logs are folders named after it
            # a task's own name may hold settings for that task alone (e.g. SQuAD's max length 384)
            alone = isinstance(mixture, dict) and mixture.get("tasks") == [name]
            if name == NONE_TASK or (name in TASKS and not alone):
                raise ValueError(
                    f"mixture name {name!r} is already a task name; pick another (a mixture named after a "
                    f"task may only hold that task's own settings: tasks: [{name}])"
                )
        return mixtures

    @field_validator("seeds")
    @classmethod
    def _seeds_listed_once(cls, seeds: list[int]) -> list[int]:
        return _unique(seeds, "seed")

    @field_validator("intermediate")
    @classmethod
    def _intermediate_known(cls, names: list[str], info: ValidationInfo) -> list[str]:
        mixtures = info.data.get("mixtures") or {}
        for name in _unique(names, "intermediate"):
            if name == NONE_TASK or name in mixtures:
                continue
            try:
                spec = _task(name)
            except ValueError as err:
                raise ValueError(f"{err}; or define it under `mixtures`") from None
            if "intermediate" not in spec.roles:
                raise ValueError(f"task {name!r} is not an intermediate task")
        return names

    def mixture(self, name: str) -> MixtureConfig:
        """The intermediate training called `name`: a configured mixture, or one registry task alone."""
        return self.mixtures.get(name) or MixtureConfig(tasks=[name])

    @field_validator("targets")
    @classmethod
    def _targets_known(cls, names: list[str]) -> list[str]:
        return _tasks_in_role(_unique(names, "target"), "target")

    @field_validator("languages")
    @classmethod
    def _languages_known(cls, languages: list[str] | None, info: ValidationInfo) -> list[str] | None:
        from xstilts.tasks.registry import check_languages

        _languages_list(languages, "all of each target's languages")
        for target in info.data.get("targets") or []:
            try:
                check_languages(_task(target), languages or [])
            except XstiltsError as err:
                raise ValueError(str(err)) from None
        return languages

    @field_validator("target_overrides")
    @classmethod
    def _overrides_are_targets(cls, overrides: dict, info: ValidationInfo) -> dict:
        unknown = set(overrides) - set(info.data.get("targets") or [])
        if unknown:
            raise ValueError(f"overrides for tasks that are not targets: {sorted(unknown)}")
        for target, override in overrides.items():
            check_strategy(override.adversarial, [target], f"target_overrides.{target}")
        return overrides

    @field_validator("intermediate_training")
    @classmethod
    def _intermediate_strategy_serves(cls, phase: PhaseConfig, info: ValidationInfo) -> PhaseConfig:
        mixtures = info.data.get("mixtures") or {}
        for name in info.data.get("intermediate") or []:
            mixture = mixtures.get(name)
            if name == NONE_TASK or (mixture is not None and mixture.adversarial is not None):
                continue  # a mixture's own strategy was checked with the mixture
            check_strategy(phase.adversarial, mixture.tasks if mixture else [name], f"intermediate {name}")
        return phase

    @field_validator("target_training")
    @classmethod
    def _target_strategy_serves(cls, phase: PhaseConfig, info: ValidationInfo) -> PhaseConfig:
        targets = info.data.get("targets") or []
        check_strategy(phase.adversarial, targets, "target_training")
        for name, mixture in (info.data.get("mixtures") or {}).items():
            check_strategy(mixture.target_adversarial, targets, f"mixtures.{name}.target_adversarial")
        return phase

    @field_validator("budget")
    @classmethod
    def _budget_stated_once(cls, budget: BudgetConfig | None, info: ValidationInfo):
        phase = info.data.get("intermediate_training")
        if budget is None or phase is None:
            return budget
        clashing = [name for name in ("train_examples", "max_steps", "patience") if getattr(phase, name)]
        if clashing:
            raise ValueError(
                f"with a budget, intermediate_training must not set {', '.join(clashing)}: the budget "
                "fixes every intermediate training's examples and steps (and early stopping would break it)"
            )
        return budget

    @field_validator("domain_shifts")
    @classmethod
    def _shifts_known(cls, names: list[str], info: ValidationInfo) -> list[str]:
        from xstilts.tasks.domains import check_shift, get_shift

        targets = info.data.get("targets") or []
        for name in _unique(names, "domain shift"):
            try:
                shift = get_shift(name)
                check_shift(shift)
            except XstiltsError as err:
                raise ValueError(str(err)) from None
            if shift.target not in targets:
                raise ValueError(f"domain shift {name!r} trains target {shift.target!r}: add it to `targets`")
        restricting: dict[str, set] = {}  # target -> the training domains its shifts ask for
        for shift in map(get_shift, names):
            restricting.setdefault(shift.target, set()).add(shift.train_domains)
        for target, domains in restricting.items():
            if len(domains) > 1:
                raise ValueError(
                    f"the domain shifts of {target} train it on different domains: {sorted(domains)}"
                )
        return names

    def target_languages(self, target: str) -> list[str]:
        """The zero-shot languages of `target`: `languages`, else the suite's list for it, else all of the
        registry's (the Bible tasks, and tasks outside the suite)."""
        from xstilts.evaluate.suites import get_suite

        if self.languages:
            return list(self.languages)
        spec, suite = _task(target), get_suite(self.suite)
        if spec.xtreme_name in suite.task_names:
            return list(suite.languages(spec.xtreme_name))
        return list(spec.languages)

    def shifts_of(self, target: str) -> list:
        """The configured domain shifts that train `target` (they agree on its training domains)."""
        from xstilts.tasks.domains import get_shift

        return [shift for shift in map(get_shift, self.domain_shifts) if shift.target == target]

    def train_domains(self, target: str) -> tuple[str, ...]:
        """The domains `target` trains on: its shifts' (empty: all of its training data)."""
        shifts = self.shifts_of(target)
        return shifts[0].train_domains if shifts else ()

    def phase_for(self, target: str, intermediate: str | None = None) -> PhaseConfig:
        """`target_training` with the fields that `target_overrides[target]` sets replaced, and the
        strategy of the mixture `intermediate` (its `target_adversarial`) when it names one."""
        phase, override = self.target_training, self.target_overrides.get(target)
        if override is not None:
            phase = phase.model_copy(update=override.model_dump(exclude_unset=True))
        mixture = self.mixtures.get(intermediate) if intermediate else None
        if mixture is not None and mixture.target_adversarial is not None:
            phase = phase.model_copy(update={"adversarial": mixture.target_adversarial})
        return phase

    def intermediate_phase(self, intermediate: str) -> PhaseConfig:
        """`intermediate_training`, with the strategy of the mixture `intermediate` when it names one and
        the run's budget (its examples and steps) when there is one."""
        mixture, phase = self.mixtures.get(intermediate), self.intermediate_training
        if mixture is not None and mixture.adversarial is not None:
            phase = phase.model_copy(update={"adversarial": mixture.adversarial})
        if self.budget is not None:
            phase = phase.model_copy(
                update={"train_examples": self.budget.examples, "max_steps": self.budget.steps}
            )
        return phase

    def fingerprint(self) -> str:
        """Hash of everything that changes results (the output location and tracking do not)."""
        payload = self.model_dump(mode="json", exclude={"output_dir", "align", "attack", "tracking"})
        payload["intermediate_training"] = self.intermediate_training.identity()
        payload["mixtures"] = {
            name: mixture.identity() | _set_strategy(mixture.target_adversarial, "target_adversarial")
            for name, mixture in self.mixtures.items()
        }
        # each target's effective phase: an override that only changes logging changes nothing
        del payload["target_overrides"]
        payload["target_training"] = {target: self.phase_for(target).identity() for target in self.targets}
        for added, unset in (("budget", None), ("domain_shifts", []), ("suite", "xtreme")):
            if payload[added] == unset:  # unset: the fingerprints of older runs stay
                del payload[added]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def _union_tags(root: yaml.Node | None, loc: tuple) -> set[int]:
    """Positions in pydantic location `loc` that name a discriminated union's member (its `strategy`),
    which the YAML does not have as a key: left out of the field shown to the user."""
    tags, node = set(), root
    for index, part in enumerate(loc):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next((v for k, v in node.value if k.value == part), None)
        if match is None and _is_union_tag(node, part):
            tags.add(index)
        elif match is None:
            break
        else:
            node = match
    return tags


def _node_line(root: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at pydantic location `loc` (deepest node found)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    tags = _union_tags(root, loc)
    for index, part in enumerate(loc):
        if index in tags:
            continue
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = key.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _is_union_tag(node: yaml.MappingNode, part) -> bool:
    """`part` is the `strategy` this mapping sets (the tag of a discriminated union's member)."""
    return any(k.value == "strategy" and getattr(v, "value", None) == part for k, v in node.value)


def _duplicate_key(root: yaml.Node | None) -> tuple[str, int, int] | None:
    """(key, first line, repeated line) of the first key that a YAML mapping repeats: PyYAML keeps the last
    value silently, so a setting written twice would quietly lose one of them."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        return key.value, first[key.value], line
                    first[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def _model_classes(annotation) -> list[type[BaseModel]]:
    """The pydantic models inside a field's annotation (`X`, `X | None`, a discriminated union)."""
    if typing.get_origin(annotation) is Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return [model for arg in typing.get_args(annotation) for model in _model_classes(arg)]
    return []


def _tagged(models: list[type[BaseModel]], tag) -> type[BaseModel] | None:
    """The member of a discriminated union whose `strategy` is `tag` (pydantic puts the tag in `loc`)."""
    for model in models:
        field = model.model_fields.get("strategy")
        if field is not None and tag in typing.get_args(field.annotation):
            return model
    return None


def _fields_at(loc: tuple) -> list[str]:
    """The field names valid at pydantic location `loc` (the parent of an unknown field)."""
    model: type[BaseModel] = ExperimentConfig
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:  # a name -> settings mapping: skip the name
            annotation = typing.get_args(annotation)[1]
            if parts:
                parts.pop(0)
        models = _model_classes(annotation)
        if len(models) > 1 and parts:  # a discriminated union: the next part is the member's tag
            models = [m] if (m := _tagged(models, parts.pop(0))) else []
        if len(models) != 1:
            return []
        model = models[0]
    return sorted(model.model_fields)


def _unknown_field(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}valid fields here: {', '.join(valid)}"


def _read_text(path: Path) -> str:
    """The config's text; bytes that are not UTF-8 are named by line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise XstiltsError(
            f"{path}:{line}: not UTF-8 ({err.reason} at byte {err.start}); save the file as UTF-8"
        ) from None


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise XstiltsError(f"config file not found: {path}")
    text = _read_text(path)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise XstiltsError(f"{where}: malformed YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise XstiltsError(f"{path}:1: the config must be a mapping of fields, got {type(data).__name__}")
    duplicate = _duplicate_key(root)
    if duplicate is not None:
        key, first, line = duplicate
        raise XstiltsError(f"{path}:{line}: key {key!r} repeats the one on line {first}; keep one of them")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            loc = tuple(problem["loc"])
            tags = _union_tags(root, loc)
            field = ".".join(str(p) for i, p in enumerate(loc) if i not in tags) or "(top level)"
            line = _node_line(root, loc)
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden" and (valid := _fields_at(loc[:-1])):
                message = _unknown_field(str(loc[-1]), valid)
            lines.append(f"{path}:{line}: field '{field}': {message}")
        raise XstiltsError("invalid config:\n  " + "\n  ".join(lines)) from None
