"""The benchmark as data: one table of TaskSpecs, looked up by name.

The nine English intermediate tasks and nine XTREME targets of Phang et al. (2020), with the hub datasets
and configs they load from and the file layout of the original releases (what XTREME's download script
produces), plus the embedded offline Bible benchmark.
"""

from __future__ import annotations

from xstilts.errors import unknown_name
from xstilts.tasks import languages as L
from xstilts.tasks.bible import BIBLE_LANGUAGES, GENRES
from xstilts.tasks.spec import DataRef, TaskSpec

NLI_LABELS = ("entailment", "neutral", "contradiction")
UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
    "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
XTREME = "google/xtreme"
EN = "en"


# -------------------------------------------------------------------------------- English data, shared
MNLI_TRAIN = DataRef(
    "nli",
    dataset_path="nyu-mll/multi_nli",
    split="train",
    local_file="mnli/train.jsonl",
    local_format="jsonl",
    language=EN,
)
MNLI_DEV = DataRef(
    "nli",
    dataset_path="nyu-mll/multi_nli",
    split="validation_matched",
    local_file="mnli/dev_matched.jsonl",
    local_format="jsonl",
    language=EN,
)
MNLI_DEV_MM = DataRef(
    "nli",
    dataset_path="nyu-mll/multi_nli",
    split="validation_mismatched",
    local_file="mnli/dev_mismatched.jsonl",
    local_format="jsonl",
    language=EN,
)
SNLI_TRAIN = DataRef(
    "nli",
    dataset_path="stanfordnlp/snli",
    split="train",
    local_file="snli/train.jsonl",
    local_format="jsonl",
    language=EN,
)
SQUAD_TRAIN = DataRef(
    "squad",
    dataset_path="rajpurkar/squad",
    split="train",
    local_file="squad/train-v1.1.json",
    local_format="squad_json",
    language=EN,
)
SQUAD_DEV = DataRef(
    "squad",
    dataset_path="rajpurkar/squad",
    split="validation",
    local_file="squad/dev-v1.1.json",
    local_format="squad_json",
    language=EN,
)


def _anli(split: str) -> tuple[DataRef, ...]:
    local = {"train": "train", "dev": "dev", "test": "test"}[split]
    return tuple(
        DataRef(
            "anli",
            dataset_path="facebook/anli",
            split=f"{split}_r{r}",
            local_file=f"anli/R{r}/{local}.jsonl",
            local_format="jsonl",
            language=EN,
        )
        for r in (1, 2, 3)
    )


def _xtreme_tsv(task: str, adapter: str, fmt: str, config: str, hub_split: dict[str, str]) -> dict:
    """XTREME's pair/tagging targets: English train/dev and per-language test, as `<task>/<split>-<lang>.tsv`."""
    return {
        split: (
            DataRef(
                adapter,
                dataset_path=XTREME,
                dataset_name=config,
                split=hub_split[split],
                local_file=f"{task}/{split}-{{lang}}.tsv",
                local_format=fmt,
            ),
        )
        for split in ("train", "dev", "test")
    }


_PAIR_TSV = "tsv:sentence1,sentence2,label"
# XTREME-R's third_party/run_xcopa.py fine-tunes its SIQA model, one-score-per-answer layer included, on
# COPA: SIQA and XCOPA share that head, so it carries over from the intermediate phase to the target
COPA_HEAD = "siqa-copa"

INTERMEDIATE: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="anli-plus",
        paper_name="ANLI+",
        kind="pair_classification",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=NLI_LABELS,
        max_length=256,
        roles=("intermediate",),
        data={"train": (SNLI_TRAIN, MNLI_TRAIN, *_anli("train")), "dev": _anli("dev"), "test": _anli("test")},
        description="SNLI + MNLI + ANLI rounds 1-3 trained together on one NLI head",
    ),
    TaskSpec(
        name="mnli",
        paper_name="MNLI",
        kind="pair_classification",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=NLI_LABELS,
        max_length=256,
        roles=("intermediate",),
        data={"train": (MNLI_TRAIN,), "dev": (MNLI_DEV,), "test": (MNLI_DEV_MM,)},
        description="MultiNLI (test = mismatched dev; the real test labels are hidden)",
    ),
    TaskSpec(
        name="qqp",
        paper_name="QQP",
        kind="pair_classification",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=("not_duplicate", "duplicate"),
        max_length=256,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={
            "train": (DataRef("qqp", dataset_path="nyu-mll/glue", dataset_name="qqp", split="train", local_file="QQP/train.tsv", local_format="tsv_header", language=EN),),
            "dev": (DataRef("qqp", dataset_path="nyu-mll/glue", dataset_name="qqp", split="validation", local_file="QQP/dev.tsv", local_format="tsv_header", language=EN),),
        },
        description="Quora Question Pairs (GLUE): are two questions duplicates",
    ),
    TaskSpec(
        name="squad-v1",
        paper_name="SQuADv1.1",
        kind="span_qa",
        source="datasets",
        languages=(EN,),
        metric="squad_f1",
        extra_metrics=("squad_em",),
        max_length=384,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={"train": (SQUAD_TRAIN,), "dev": (SQUAD_DEV,)},
        description="SQuAD v1.1 extractive QA",
    ),
    TaskSpec(
        name="squad-v2",
        paper_name="SQuADv2.0",
        kind="span_qa",
        source="datasets",
        languages=(EN,),
        metric="squad_v2_f1",
        extra_metrics=("squad_v2_em",),
        max_length=384,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={
            "train": (DataRef("squad", dataset_path="rajpurkar/squad_v2", split="train", local_file="squad/train-v2.0.json", local_format="squad_json"),),
            "dev": (DataRef("squad", dataset_path="rajpurkar/squad_v2", split="validation", local_file="squad/dev-v2.0.json", local_format="squad_json"),),
        },
        description="SQuAD v2.0 extractive QA with unanswerable questions",
    ),
    TaskSpec(
        name="hellaswag",
        paper_name="HellaSwag",
        kind="multiple_choice",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=("0", "1", "2", "3"),
        max_length=256,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={
            "train": (DataRef("hellaswag", dataset_path="Rowan/hellaswag", split="train", local_file="hellaswag/hellaswag_train.jsonl", local_format="jsonl"),),
            "dev": (DataRef("hellaswag", dataset_path="Rowan/hellaswag", split="validation", local_file="hellaswag/hellaswag_val.jsonl", local_format="jsonl"),),
        },
        description="commonsense sentence completion, 4 endings",
    ),
    TaskSpec(
        name="ccg",
        paper_name="CCG",
        kind="tagging",
        source="local",
        languages=(EN,),
        metric="accuracy_tokens",
        max_length=256,
        roles=("intermediate",),
        data={split: (DataRef("ccg", local_file=f"ccg/ccg.{split}.tsv", local_format="conll"),) for split in ("train", "dev", "test")},
        description="CCG supertagging (CCGbank is licensed: local files only; tag set read from the train file)",
    ),
    TaskSpec(
        name="cosmosqa",
        paper_name="CosmosQA",
        kind="multiple_choice",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=("0", "1", "2", "3"),
        max_length=256,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={
            "train": (DataRef("cosmosqa", dataset_path="allenai/cosmos_qa", split="train", local_file="cosmosqa/train.jsonl", local_format="jsonl"),),
            "dev": (DataRef("cosmosqa", dataset_path="allenai/cosmos_qa", split="validation", local_file="cosmosqa/valid.jsonl", local_format="jsonl"),),
        },
        description="reading comprehension requiring commonsense, 4 answers",
    ),
    TaskSpec(
        name="commonsenseqa",
        paper_name="CommonsenseQA",
        kind="multiple_choice",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=("A", "B", "C", "D", "E"),
        max_length=128,
        roles=("intermediate",),
        splits=("train", "dev"),
        data={
            "train": (DataRef("commonsenseqa", dataset_path="tau/commonsense_qa", split="train", local_file="commonsenseqa/train_rand_split.jsonl", local_format="jsonl"),),
            "dev": (DataRef("commonsenseqa", dataset_path="tau/commonsense_qa", split="validation", local_file="commonsenseqa/dev_rand_split.jsonl", local_format="jsonl"),),
        },
        description="commonsense multiple-choice questions, 5 answers",
    ),
    TaskSpec(
        name="siqa",
        kind="multiple_choice",
        source="datasets",
        languages=(EN,),
        metric="accuracy",
        labels=("A", "B", "C"),
        max_length=128,
        roles=("intermediate",),
        splits=("train", "dev"),
        head=COPA_HEAD,
        data={
            # AI2's socialiqa-train-dev.zip unpacked under siqa/: <split>.jsonl and <split>-labels.lst ("1".."3")
            "train": (DataRef("siqa", dataset_path="allenai/social_i_qa", split="train", local_file="siqa/socialiqa-train-dev/train.jsonl", local_format="jsonl_labels", language=EN),),
            "dev": (DataRef("siqa", dataset_path="allenai/social_i_qa", split="validation", local_file="siqa/socialiqa-train-dev/dev.jsonl", local_format="jsonl_labels", language=EN),),
        },
        description="Social IQa: social commonsense questions, 3 answers; XTREME-R trains XCOPA on it first (scripts/train_xcopa.sh)",
    ),
)  # fmt: skip

_QA_TRAIN = {"train": (SQUAD_TRAIN,), "dev": (SQUAD_DEV,)}

TARGETS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="xnli",
        paper_name="XNLI",
        xtreme_name="xnli",
        kind="pair_classification",
        source="datasets",
        languages=L.XNLI,
        metric="accuracy",
        labels=NLI_LABELS,
        max_length=256,
        data={
            "train": (DataRef("nli", dataset_path="nyu-mll/multi_nli", split="train", local_file="xnli/train-en.tsv", local_format=_PAIR_TSV, language=EN),),
            "dev": (DataRef("xnli", dataset_path=XTREME, dataset_name="XNLI", split="validation", local_file="xnli/dev-{lang}.tsv", local_format=_PAIR_TSV),),
            "test": (DataRef("xnli", dataset_path=XTREME, dataset_name="XNLI", split="test", local_file="xnli/test-{lang}.tsv", local_format=_PAIR_TSV),),
        },
        description="cross-lingual NLI; trained on MNLI",
    ),
    TaskSpec(
        name="pawsx",
        paper_name="PAWS-X",
        xtreme_name="pawsx",
        kind="pair_classification",
        source="datasets",
        languages=L.PAWSX,
        metric="accuracy",
        labels=("0", "1"),
        max_length=256,
        data=_xtreme_tsv("pawsx", "pawsx", _PAIR_TSV, "PAWS-X.{lang}", {"train": "train", "dev": "validation", "test": "test"}),
        description="paraphrase identification with high lexical overlap",
    ),
    TaskSpec(
        name="udpos",
        paper_name="POS",
        xtreme_name="udpos",
        kind="tagging",
        source="datasets",
        languages=L.UDPOS_R,
        metric="pos_f1",
        extra_metrics=("pos_precision", "pos_recall"),
        labels=UPOS_TAGS,
        max_length=256,
        data=_xtreme_tsv("udpos", "udpos", "conll", "udpos.{udpos_name}", {"train": "train", "dev": "validation", "test": "test"}),
        description="Universal Dependencies v2.5 part-of-speech tags",
    ),
    TaskSpec(
        name="panx",
        paper_name="NER",
        xtreme_name="panx",
        kind="tagging",
        source="datasets",
        languages=L.PANX_R,
        metric="ner_f1",
        extra_metrics=("ner_precision", "ner_recall"),
        labels=PANX_TAGS,
        max_length=256,
        data=_xtreme_tsv("panx", "panx", "conll", "PAN-X.{lang}", {"train": "train", "dev": "validation", "test": "test"}),
        description="WikiANN named entities (PER, ORG, LOC), entity-level F1",
    ),
    TaskSpec(
        name="xquad",
        paper_name="XQuAD",
        xtreme_name="xquad",
        kind="span_qa",
        source="datasets",
        languages=L.XQUAD_R,
        metric="squad_f1",
        extra_metrics=("squad_em",),
        max_length=384,
        data={**_QA_TRAIN, "test": (DataRef("squad", dataset_path=XTREME, dataset_name="XQuAD.{lang}", split="validation", local_file="xquad/xquad.{lang}.json", local_format="squad_json"),)},
        description="SQuAD v1.1 dev translated into 10 languages; trained on SQuAD v1.1",
    ),
    TaskSpec(
        name="mlqa",
        paper_name="MLQA",
        xtreme_name="mlqa",
        kind="span_qa",
        source="datasets",
        languages=L.MLQA,
        metric="mlqa_f1",
        extra_metrics=("mlqa_em",),
        max_length=384,
        data={
            **_QA_TRAIN,
            "test": (DataRef("squad", dataset_path=XTREME, dataset_name="MLQA.{lang}.{lang}", split="test", local_file="mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json", local_format="squad_json"),),
        },
        description="extractive QA, context and question in the same language; MLQA's normalisation",
    ),
    TaskSpec(
        name="tydiqa",
        paper_name="TyDiQA-GoldP",
        xtreme_name="tydiqa",
        kind="span_qa",
        source="datasets",
        languages=L.TYDIQA,
        metric="squad_f1",
        extra_metrics=("squad_em",),
        max_length=384,
        data={
            # XTREME README / scripts/train_qa.sh and jiant's tydiqa_en: trained on the English GoldP training
            # set (3,696 questions), not SQuAD; selected on the English GoldP dev set, as jiant does
            "train": (DataRef("tydiqa", dataset_path=XTREME, dataset_name="tydiqa", split="train", local_file="tydiqa/tydiqa-goldp-v1.1-train/tydiqa.en.train.json", local_format="squad_json", language=EN),),
            "dev": (DataRef("tydiqa", dataset_path=XTREME, dataset_name="tydiqa", split="validation", local_file="tydiqa/tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-english.json", local_format="squad_json", language=EN),),
            "test": (DataRef("tydiqa", dataset_path=XTREME, dataset_name="tydiqa", split="validation", local_file="tydiqa/tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-{tydiqa_name}.json", local_format="squad_json"),),
        },
        description="gold-passage QA in typologically diverse languages; trained on English TyDiQA-GoldP (XTREME tests on its dev set)",
    ),
    TaskSpec(
        name="bucc2018",
        paper_name="BUCC",
        xtreme_name="bucc2018",
        kind="mining",
        source="datasets",
        languages=L.BUCC,
        metric="bucc_f1",
        extra_metrics=("bucc_precision", "bucc_recall"),
        splits=("dev", "test"),
        max_length=512,
        retrieval_layer=14,
        pooling="mean",
        data={
            "dev": (DataRef("bucc", dataset_path=XTREME, dataset_name="bucc18.{lang}", split="validation", local_file="bucc2018/{lang}-en.sample", local_format="bucc"),),
            "test": (DataRef("bucc", dataset_path=XTREME, dataset_name="bucc18.{lang}", split="test", local_file="bucc2018/{lang}-en.training", local_format="bucc"),),
        },
        description="parallel-sentence mining, ratio-margin scores, threshold tuned on the sample split; scored on the training gold (the test gold is hidden)",
    ),
    TaskSpec(
        name="tatoeba",
        paper_name="Tatoeba",
        xtreme_name="tatoeba",
        kind="retrieval",
        source="datasets",
        languages=L.TATOEBA_R,
        metric="retrieval_accuracy",
        splits=("test",),
        max_length=512,
        retrieval_layer=14,
        pooling="mean",
        retrieval_direction="en->xx",
        data={"test": (DataRef("tatoeba", dataset_path=XTREME, dataset_name="tatoeba.{iso3}", split="validation", local_file="tatoeba/tatoeba.{iso3}-eng", local_format="tatoeba"),)},
        description="en -> xx sentence retrieval (XTREME: the xx sentences are indexed, English ones query), top-1 accuracy by cosine",
    ),
    TaskSpec(
        name="xcopa",
        xtreme_name="xcopa",
        kind="multiple_choice",
        source="datasets",
        languages=L.XCOPA,
        metric="accuracy",
        labels=("0", "1"),
        max_length=128,
        head=COPA_HEAD,
        data={
            # XTREME-R scripts/train_xcopa.sh (after SIQA) and download_data.sh: English COPA of SuperGLUE's
            # COPA.zip for training and model selection; the test sets of the XCOPA repository, with labels
            # (XTREME-R's download script sets every test label to 0)
            "train": (DataRef("copa", dataset_path="aps/super_glue", dataset_name="copa", split="train", local_file="COPA/train.jsonl", local_format="jsonl", language=EN),),
            "dev": (DataRef("copa", dataset_path="aps/super_glue", dataset_name="copa", split="validation", local_file="COPA/val.jsonl", local_format="jsonl", language=EN),),
            "test": (DataRef("copa", dataset_path="cambridgeltl/xcopa", dataset_name="{lang}", split="test", local_file="xcopa/data/{lang}/test.{lang}.jsonl", local_format="jsonl"),),
        },
        description="XCOPA: causal commonsense (cause/effect), 2 choices, 11 languages (not English); trained on English COPA",
    ),
)  # fmt: skip

# XTREME-R's ranking tasks (google-research/xtreme: scripts/train_lareqa.sh, scripts/train_mewslix.sh,
# third_party/evaluate_retrieval.py), trained as dual encoders and scored with mAP@20.
XQUAD_R = "google-research-datasets/xquad_r"
MEWSLI_X = "izhx/mewsli-x"  # a community copy of the release (get-mewsli-x.sh output), not Google's


def _xquad_r(lang: str) -> DataRef:
    """XQuAD-R in one language, pinned: every language's file is read for each language's problem (the
    LAReQA pool is all 11 languages' sentences), as `lareqa/xquad-r/<lang>.json` after XTREME's download
    script. The hub's rows lack the released sentence breaks, so the `xquad_r` adapter refuses them."""
    return DataRef(
        "xquad_r",
        dataset_path=XQUAD_R,
        dataset_name=lang,
        split="validation",
        local_file=f"lareqa/xquad-r/{lang}.json",
        local_format="squad_json",
        language=lang,
    )


def _wikipedia_pairs(split: str, hub_split: str) -> DataRef:
    return DataRef(
        "mewslix_pair",
        dataset_path=MEWSLI_X,
        dataset_name="wikipedia_pairs",
        split=hub_split,
        local_file=f"mewslix/wikipedia_pairs-{split}.jsonl",
        local_format="jsonl",
        language=EN,
    )


XTREME_R_RANKING: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="lareqa",
        xtreme_name="lareqa",
        kind="ranking",
        source="datasets",
        languages=L.LAREQA,
        metric="map_at_20",
        max_length=256,
        data={
            "train": (DataRef("lareqa", dataset_path="rajpurkar/squad", split="train", local_file="squad/train-v1.1.json", local_format="squad_json", language=EN),),
            "dev": (DataRef("lareqa", dataset_path="rajpurkar/squad", split="validation", local_file="squad/dev-v1.1.json", local_format="squad_json", language=EN),),
            "test": tuple(_xquad_r(lang) for lang in L.LAREQA),
        },
        description="language-agnostic answer retrieval: a question against every XQuAD-R sentence of all 11 languages, each language's gold sentence relevant; trained on SQuAD v1.1 question -> answer sentence",
    ),
    TaskSpec(
        name="mewslix",
        xtreme_name="mewslix",
        kind="ranking",
        source="datasets",
        languages=L.MEWSLIX,
        metric="map_at_20",
        max_length=64,
        data={
            "train": (_wikipedia_pairs("train", "train"),),
            "dev": (_wikipedia_pairs("dev", "validation"),),
            "test": (
                DataRef("mewslix_mentions", dataset_path=MEWSLI_X, dataset_name="{lang}", split="test", local_file="mewslix/wikinews_mentions/test-{lang}.jsonl", local_format="jsonl"),
                DataRef("mewslix_entity", dataset_path=MEWSLI_X, dataset_name="candidate_entities", split="test", local_file="mewslix/candidate_set_entities.jsonl", local_format="jsonl"),
            ),
        },
        description="entity linking as retrieval: a WikiNews mention against the ~1M-entity candidate set; trained on English Wikipedia mention-entity pairs (hub: the community copy izhx/mewsli-x)",
    ),
)  # fmt: skip

# MultiNLI's genres: its training set holds five, its dev/test sets (and XNLI's) five more
MNLI_GENRES = ("fiction", "government", "slate", "telephone", "travel")
OTHER_NLI_GENRES = ("facetoface", "letters", "nineeleven", "oup", "verbatim")
NLI_GENRES = MNLI_GENRES + OTHER_NLI_GENRES

DOMAIN_TEST_SETS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="xnli-genres",
        kind="pair_classification",
        source="local",
        languages=L.XNLI,
        metric="accuracy",
        labels=NLI_LABELS,
        max_length=256,
        splits=("test",),
        roles=("test",),  # a test set of domain shifts only (their target is xnli)
        domains=NLI_GENRES,
        data={"test": (DataRef("xnli", local_file="XNLI-1.0/xnli.test.tsv", local_format="tsv_header"),)},
        description="XNLI's test set from the original XNLI-1.0 release, which names each pair's genre "
        "(XTREME's files and the hub's do not)",
    ),
)

_BIBLE_LANGS = tuple(BIBLE_LANGUAGES)

EMBEDDED: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="bible-next",
        domains=tuple(GENRES),
        kind="multiple_choice",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=("0", "1", "2", "3"),
        max_length=96,
        roles=("intermediate",),
        description="HellaSwag-like: pick the verse that follows among 4 from the same book",
    ),
    TaskSpec(
        name="bible-genre",
        domains=tuple(GENRES),
        kind="classification",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=tuple(GENRES),
        max_length=96,
        roles=("intermediate", "target"),
        description="the canonical genre of the verse's book (8 classes)",
    ),
    TaskSpec(
        name="bible-pair",
        domains=tuple(GENRES),
        kind="pair_classification",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=("apart", "together"),
        max_length=160,
        description="PAWS-X-like: are two verses adjacent in the same passage",
    ),
    TaskSpec(
        name="bible-follows",
        domains=tuple(GENRES),
        kind="pair_classification",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="accuracy",
        labels=("apart", "together"),
        max_length=160,
        description="does the second verse follow the first; negatives from another book of the same genre",
    ),
    TaskSpec(
        name="bible-retrieval",
        kind="retrieval",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="retrieval_accuracy",
        splits=("test",),
        max_length=128,
        retrieval_layer=12,
        pooling="mean",
        retrieval_direction="en->xx",
        description="Tatoeba-like: en->xx top-1 over held-out verses, mean-pooled layer 12, cosine",
    ),
    TaskSpec(
        name="bible-mining",
        kind="mining",
        source="bible",
        languages=_BIBLE_LANGS,
        metric="bucc_f1",
        splits=("dev", "test"),
        max_length=128,
        retrieval_layer=12,
        pooling="mean",
        description="BUCC-like: bible-retrieval's verse pairs hidden among one-sided verses; margin mining, F1",
    ),
)

TASK_TABLE: tuple[TaskSpec, ...] = INTERMEDIATE + TARGETS + XTREME_R_RANKING + EMBEDDED + DOMAIN_TEST_SETS

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in TASK_TABLE}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_name("task", name, TASKS) from None


def check_languages(spec: TaskSpec, languages: list[str]) -> None:
    """Raise with the task's valid languages when any requested one is not among them."""
    for lang in languages:
        if lang not in spec.languages:
            raise unknown_name(f"language for task {spec.name}", lang, spec.languages)
