"""Task kinds: each owns its chain examples -> features -> padded batch -> loss, and logits -> predictions.

The training loop, inference and the pipeline only ever call these methods, never branch on a kind:

- `head_level` ("sequence" | "token") and `head_outputs(spec)`: the head the kind trains (`head(spec)`).
- `encode(examples, tokenizer, max_length, *, for_training)`: unpadded features. Evaluation features
  may carry what decoding needs (span QA: window -> example, character offsets and max-context flags;
  tagging: piece -> sentence and word positions).
- `collate(features, tokenizer)`: a padded batch of tensors (model inputs and training targets only).
- `logits_shape(logits, batch)`: the model's output arranged the way `loss` and decoding read it.
- `loss(logits, batch)`: the training loss of a batch.
- `decode(logits, features, examples, spec)` and `gold(examples, spec)`: predictions and references in
  the form the task's metrics take; `logits` is what `predict_logits` returns for these features.
- `encoding_note(features)`: a line about what encoding lost or split (None when nothing to say).

What the rest of the code needs to know about a kind is an attribute here, never a comparison of its name:
`trains` (False: scored straight on the encoder's pooled hidden states, as XTREME scores BUCC and
Tatoeba), `encoder_scorer` (which `evaluate.encoder_scores` procedure scores such a kind),
`prediction_format` (the XTREME submission file format), `one_example_per_language` (a source returns one
problem per language: mining), `parallel_translation` (examples carry their English translation:
retrieval), `tags_from_train_file` (a tag set left empty in the registry is read from the training
file: tagging), `attack_fields` (the text fields an attack may perturb; empty: not attackable),
`substitution_fields` (the fields whose words robust training may substitute in training copies: text
fields, or a list of words whose tags stay aligned; empty: data strategies cannot serve the kind),
`perturbable` (False: adversarial strategies train the kind plainly, as the MLM baseline's stream) and
`problem_parts` (the adapters yield parts of ranking problems: a source turns the train split's parts
into training examples with `training_pairs(part)` and merges every other split's into one problem per
language with `merge_parts(parts, lang, limit=, seed=, where=)`; ranking).

Adding a kind means adding one class here and registering it in KINDS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding

from xstilts.errors import XstiltsError, unknown_name
from xstilts.models.heads import HeadSpec
from xstilts.tasks import qa_features, ranking, tag_features
from xstilts.tasks.spec import TaskSpec


def _tokenize(examples: list[dict], fields: tuple[str, ...], tokenizer, max_length: int) -> list[dict]:
    """Unpadded features (padding happens per batch, in `collate`)."""
    columns = [[ex[field] for ex in examples] for field in fields]
    enc = tokenizer(*columns, truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True)
    ]


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-padded (rows, longest) tensor: token-level logits are then read from position 0 on."""
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def _pad_inputs(features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
    return {
        "input_ids": _pad([f["input_ids"] for f in features], tokenizer.pad_token_id),
        "attention_mask": _pad([f["attention_mask"] for f in features], 0),
    }


class _Kind:
    """Shared defaults: a pooled head, labels in `example["label"]`, argmax predictions."""

    name: str = ""
    head_level: str = "sequence"
    training_keys: tuple[str, ...] = ("labels",)  # what `encode(..., for_training=True)` adds
    trains: bool = True
    encoder_scorer: str | None = None  # key of evaluate.encoder_scores.ENCODER_SCORERS when not trained
    prediction_format: str = "labels"  # "labels" | "tags" | "answers" | "pairs" | "rankings" (XTREME's files)
    one_example_per_language: bool = False
    parallel_translation: bool = False
    tags_from_train_file: bool = False
    attack_fields: tuple[str, ...] = ()  # text fields an attack may perturb (untargeted misclassification)
    # fields whose words data strategies substitute (a str field: any words; a list field: word by word)
    substitution_fields: tuple[str, ...] = ()
    perturbable: bool = True  # embedding-space strategies apply (False: the MLM stream trains plainly)
    problem_parts: bool = False  # adapters yield ranking-problem parts (see the module docstring)

    def head(self, spec: TaskSpec) -> HeadSpec:
        return HeadSpec(self.head_outputs(spec), self.head_level)

    def head_outputs(self, spec: TaskSpec) -> int:
        raise NotImplementedError

    def logits_shape(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits

    def forward_kwargs(self, batch: dict) -> dict:
        """Extra model inputs taken from the batch (the MLM kind scores only masked positions)."""
        return {}

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(self.logits_shape(logits, batch).float(), batch["labels"])

    def output_log_probs(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The predicted distributions as (n, classes) log-probabilities (SMART compares them)."""
        return F.log_softmax(self.logits_shape(logits, batch).float(), dim=-1)

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return logits.argmax(-1)

    def decode(self, logits, features: list[dict], examples: list[dict], spec: TaskSpec):
        return self.predict(np.asarray(logits))

    def gold(self, examples: list[dict], spec: TaskSpec):
        return np.array([ex["label"] for ex in examples])

    def encoding_note(self, features: list[dict]) -> str | None:
        return None


@dataclass(frozen=True)
class SequenceClassification(_Kind):
    """One text -> one of N labels; logits from a head on the pooled sequence."""

    name: str = "classification"
    text_fields: tuple[str, ...] = ("text",)

    def head_outputs(self, spec: TaskSpec) -> int:
        return spec.num_labels

    @property
    def attack_fields(self) -> tuple[str, ...]:
        return self.text_fields

    @property
    def substitution_fields(self) -> tuple[str, ...]:
        return self.text_fields

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        features = _tokenize(examples, self.text_fields, tokenizer, max_length)
        for feature, example in zip(features, examples, strict=True):
            feature["labels"] = example["label"]
        return features

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorWithPadding(tokenizer, return_tensors="pt")(features)


@dataclass(frozen=True)
class PairClassification(SequenceClassification):
    """Two texts encoded as one sequence pair (<s> A </s></s> B </s>)."""

    name: str = "pair_classification"
    text_fields: tuple[str, ...] = ("text_a", "text_b")


@dataclass(frozen=True)
class MultipleChoice(_Kind):
    """Context paired with each choice; one score per choice, softmax over choices."""

    name: str = "multiple_choice"
    prediction_format: str = "choices"  # XCOPA's: a JSON line {"label": index} per question
    attack_fields: tuple[str, ...] = ("context",)
    substitution_fields: tuple[str, ...] = ("context",)

    def head_outputs(self, spec: TaskSpec) -> int:
        return 1

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        n_choices = {len(ex["choices"]) for ex in examples}
        if len(n_choices) > 1:
            raise ValueError(f"multiple-choice examples must share a number of choices, got {n_choices}")
        firsts = [ex["context"] for ex in examples for _ in ex["choices"]]
        seconds = [choice for ex in examples for choice in ex["choices"]]
        enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        k = n_choices.pop() if examples else 0
        features = []
        for i, ex in enumerate(examples):
            rows = slice(i * k, (i + 1) * k)
            features.append(
                {
                    "input_ids": enc["input_ids"][rows],
                    "attention_mask": enc["attention_mask"][rows],
                    "labels": ex["label"],
                }
            )
        return features

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorForMultipleChoice(tokenizer, return_tensors="pt")(features)

    def logits_shape(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits.view(batch["input_ids"].shape[0], batch["input_ids"].shape[1])


@dataclass(frozen=True)
class SpanQA(_Kind):
    """Extractive QA: start and end logits per token of question/context windows (see qa_features).

    The window settings are fields, so a variant is `dataclasses.replace(get_kind("span_qa"), ...)`.
    Questions may go unanswered (predict "") only for tasks scored as SQuAD 2.0 (`squad_v2_*` metrics).
    """

    name: str = "span_qa"
    head_level: str = "token"
    prediction_format: str = "answers"
    training_keys: tuple[str, ...] = ("start_positions", "end_positions")
    substitution_fields: tuple[str, ...] = ("question",)  # a changed context would move the answers
    doc_stride: int = qa_features.DOC_STRIDE
    max_query_tokens: int = qa_features.MAX_QUERY_TOKENS
    n_best: int = qa_features.N_BEST
    max_answer_tokens: int = qa_features.MAX_ANSWER_TOKENS
    null_threshold: float = 0.0

    def head_outputs(self, spec: TaskSpec) -> int:
        return 2

    @staticmethod
    def allows_no_answer(spec: TaskSpec) -> bool:
        return spec.metric.startswith("squad_v2")

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        return qa_features.encode_span_qa(
            examples,
            tokenizer,
            max_length,
            for_training=for_training,
            doc_stride=self.doc_stride,
            max_query_tokens=self.max_query_tokens,
        )

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        batch = _pad_inputs(features, tokenizer)
        for key in self.training_keys:
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        return batch

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Mean of the start and end cross-entropies; padding positions are out of the softmax."""
        logits = self._masked(logits, batch)
        start = F.cross_entropy(logits[..., 0], batch["start_positions"])
        end = F.cross_entropy(logits[..., 1], batch["end_positions"])
        return (start + end) / 2

    @staticmethod
    def _masked(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits.float().masked_fill(~batch["attention_mask"].bool().unsqueeze(-1), -1e4)

    def output_log_probs(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Start and end distributions over each window's tokens: (2 x windows, length)."""
        return F.log_softmax(self._masked(logits, batch).transpose(1, 2).flatten(0, 1), dim=-1)

    def decode(self, logits, features: list[dict], examples: list[dict], spec: TaskSpec) -> dict[str, str]:
        return qa_features.decode_span_qa(
            logits,
            features,
            examples,
            n_best=self.n_best,
            max_answer_tokens=self.max_answer_tokens,
            allow_no_answer=self.allows_no_answer(spec),
            null_threshold=self.null_threshold,
        )

    def gold(self, examples: list[dict], spec: TaskSpec) -> dict[str, list[str]]:
        return qa_features.gold_answers(examples)

    def encoding_note(self, features: list[dict]) -> str | None:
        return qa_features.windows_note(features)


def _tag_set(spec: TaskSpec) -> tuple[str, ...]:
    if not spec.labels:
        raise XstiltsError(f"tagging task {spec.name} has no tag set (TaskSpec.labels is empty)")
    return spec.labels


@dataclass(frozen=True)
class Tagging(_Kind):
    """One tag per word, predicted at the word's first sub-token (see tag_features)."""

    name: str = "tagging"
    head_level: str = "token"
    prediction_format: str = "tags"
    tags_from_train_file: bool = True
    substitution_fields: tuple[str, ...] = ("tokens",)  # word by word: the tags stay aligned

    def head_outputs(self, spec: TaskSpec) -> int:
        return len(_tag_set(spec))

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        return tag_features.encode_tagging(examples, tokenizer, max_length, for_training=for_training)

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        batch = _pad_inputs(features, tokenizer)
        if "labels" in features[0]:
            batch["labels"] = _pad([f["labels"] for f in features], tag_features.IGNORE)
        return batch

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Cross-entropy over the labelled positions (first sub-tokens) only."""
        labels = batch["labels"]
        if not (labels != tag_features.IGNORE).any():
            return logits.sum() * 0.0  # a batch of wordless sentences: nothing to learn, no NaN
        return F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=tag_features.IGNORE
        )

    def output_log_probs(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The tag distributions of the labelled positions (first sub-tokens): (words, tags)."""
        return F.log_softmax(logits.float()[batch["labels"] != tag_features.IGNORE], dim=-1)

    def decode(self, logits, features: list[dict], examples: list[dict], spec: TaskSpec) -> list[list[str]]:
        return tag_features.decode_tagging(logits, features, examples, _tag_set(spec))

    def gold(self, examples: list[dict], spec: TaskSpec) -> list[list[str]]:
        return tag_features.gold_tags(examples, _tag_set(spec))

    def encoding_note(self, features: list[dict]) -> str | None:
        return tag_features.lost_words_note(features)


def _encode_texts(examples: list[dict], tokenizer, max_length: int) -> list[dict]:
    return _tokenize(examples, ("text",), tokenizer, max_length)


@dataclass(frozen=True)
class Retrieval(_Kind):
    """Parallel sentences; no head: scored on pooled hidden states of one layer (Tatoeba).

    Examples are {"text", "translation"}: row i of one language translates row i of English, so the gold
    of the queries, in order, is 0, 1, 2, ... in whichever direction the search runs.
    """

    name: str = "retrieval"
    training_keys: tuple[str, ...] = ()
    trains: bool = False
    encoder_scorer: str = "top1_retrieval"
    parallel_translation: bool = True

    def head_outputs(self, spec: TaskSpec) -> int:
        return 0

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        return _encode_texts(examples, tokenizer, max_length)

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        return DataCollatorWithPadding(tokenizer, return_tensors="pt")(features)

    def gold(self, examples: list[dict], spec: TaskSpec) -> list[int]:
        return list(range(len(examples)))


@dataclass(frozen=True)
class Mining(Retrieval):
    """Parallel-sentence mining (BUCC): one problem per language, {"source": {id: text}, "target": {id:
    text} (English), "gold": [[source id, target id], ...]}; the pools' sentences are encoded as retrieval
    texts. No head; predictions and gold are sets of (source id, target id) pairs."""

    name: str = "mining"
    encoder_scorer: str = "margin_mining"
    prediction_format: str = "pairs"
    one_example_per_language: bool = True
    parallel_translation: bool = False

    def gold(self, examples: list[dict], spec: TaskSpec) -> set[tuple[str, str]]:
        return {(str(source), str(target)) for example in examples for source, target in example["gold"]}


def _is_pair_feature(feature: dict) -> bool:
    ids = feature["input_ids"]
    return bool(ids) and isinstance(ids[0], list)


@dataclass(frozen=True)
class Ranking(_Kind):
    """A dual encoder on the shared encoder (XTREME-R's LAReQA and Mewsli-X baselines): queries and
    candidates go through the same encoder and a sequence-level head whose outputs are the embedding.

    Training examples are {"id", "query", "candidate"} pairs, encoded as two rows per feature (like
    multiple choice); the loss is the in-batch softmax: cross-entropy over each query's cosine
    similarities to the batch's candidates divided by `temperature`, its own candidate on the diagonal
    (XTREME `third_party/bert.py`, `BertForRetrieval`: L2-normalised encodings, similarity x logit_scale
    with logit_scale initialised to 100, labels `arange(batch)`). XTREME learns the scale from 100; here it
    stays 100 (temperature 0.01), since a kind holds no parameters. A repeated candidate in a batch counts
    as a negative there too.

    Evaluation examples are problems, {"id", "language", "queries": {qid: text}, "candidates": {cid:
    text}, "relevant": {qid: [cid, ...]}} (see `tasks/ranking.py`); each query and each candidate is one
    single-text feature, and `decode` ranks the candidates of each query's problem by cosine with faiss,
    keeping the best `top_k` (mAP@20 reads 20, XTREME-R's cut: utils_mewslix `TOP_K`).

    `embedding_size` is the head's output: 256, a projection of the pooled state (XTREME uses the 768 or
    1,024 dimensions of the pooler itself; a fixed size keeps the head's shape independent of the encoder).
    """

    name: str = "ranking"
    training_keys: tuple[str, ...] = ()  # the positives are the diagonal of each batch
    prediction_format: str = "rankings"
    problem_parts: bool = True
    substitution_fields: tuple[str, ...] = ("query",)  # the candidate is the thing to find: kept as is
    embedding_size: int = 256
    temperature: float = 0.01
    top_k: int = 20

    def head_outputs(self, spec: TaskSpec) -> int:
        return self.embedding_size

    # ------------------------------------------------------------------------------ parts -> examples
    def training_pairs(self, part: dict) -> list[dict]:
        return ranking.training_pairs(part)

    def merge_parts(self, parts: list[dict], lang: str, *, limit, seed: int, where: str) -> list[dict]:
        return [ranking.merge_parts(parts, lang, limit=limit, seed=seed, where=where)]

    # ---------------------------------------------------------------------------------- features
    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        """Pairs -> one two-row feature each; problems -> one feature per query, then per candidate, each
        marked with its problem, side and id (what `decode` reads)."""
        pairs = [ex for ex in examples if "query" in ex]
        if pairs and len(pairs) != len(examples):
            raise XstiltsError("ranking examples mix (query, candidate) pairs and problems")
        if for_training and len(pairs) != len(examples):
            raise XstiltsError("ranking trains on (query, candidate) pairs, not on problems")
        if pairs:
            return self._encode_pairs(pairs, tokenizer, max_length)
        texts, marks = [], []
        for index, problem in enumerate(examples):
            for side, field in (("query", "queries"), ("candidate", "candidates")):
                for key, text in problem[field].items():
                    texts.append(text)
                    marks.append({"problem": index, "side": side, "key": key})
        if not texts:
            return []
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        return [
            {"input_ids": ids, "attention_mask": mask, **mark, "full": len(ids) >= max_length}
            for ids, mask, mark in zip(enc["input_ids"], enc["attention_mask"], marks, strict=True)
        ]

    @staticmethod
    def _encode_pairs(pairs: list[dict], tokenizer, max_length: int) -> list[dict]:
        queries = tokenizer([ex["query"] for ex in pairs], truncation=True, max_length=max_length)
        candidates = tokenizer([ex["candidate"] for ex in pairs], truncation=True, max_length=max_length)
        return [
            {"input_ids": [q_ids, c_ids], "attention_mask": [q_mask, c_mask]}
            for q_ids, c_ids, q_mask, c_mask in zip(
                queries["input_ids"],
                candidates["input_ids"],
                queries["attention_mask"],
                candidates["attention_mask"],
                strict=True,
            )
        ]

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        """(batch, 2, length) for pairs (query row, candidate row), (batch, length) for single texts."""
        if not _is_pair_feature(features[0]):
            return _pad_inputs(features, tokenizer)
        rows = [row for f in features for row in f["input_ids"]]
        masks = [row for f in features for row in f["attention_mask"]]
        width = (len(features), 2, -1)
        return {
            "input_ids": _pad(rows, tokenizer.pad_token_id).view(width),
            "attention_mask": _pad(masks, 0).view(width),
        }

    def logits_shape(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """(batch, 2, embedding) for pairs (the model flattens them to rows), else (batch, embedding)."""
        if batch["input_ids"].dim() == 3:
            return logits.view(batch["input_ids"].shape[0], 2, -1)
        return logits

    def similarities(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """(batch, batch) cosine similarities / temperature: query i against candidate j."""
        if batch["input_ids"].dim() != 3:
            raise XstiltsError("ranking trains on (query, candidate) pairs, not on single texts")
        pairs = self.logits_shape(logits, batch).float()
        queries = F.normalize(pairs[:, 0], dim=-1)
        candidates = F.normalize(pairs[:, 1], dim=-1)
        return queries @ candidates.T / self.temperature

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        scores = self.similarities(logits, batch)
        return F.cross_entropy(scores, torch.arange(scores.shape[0], device=scores.device))

    def output_log_probs(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Each query's distribution over the batch's candidates (SMART compares them)."""
        return F.log_softmax(self.similarities(logits, batch), dim=-1)

    # -------------------------------------------------------------------------------- predictions
    def decode(self, logits, features: list[dict], examples: list[dict], spec: TaskSpec):
        """{query id: [the top_k candidate ids, best first]} over every problem."""
        from xstilts.evaluate.metrics import nearest_neighbours  # faiss loads on the first ranking only

        vectors = np.asarray(logits, dtype=np.float32)
        rankings: dict[str, list[str]] = {}
        for index in range(len(examples)):
            rows = {"query": [], "candidate": []}
            for row, feature in enumerate(features):
                if feature["problem"] == index:
                    rows[feature["side"]].append(row)
            if not rows["query"]:
                continue
            if not rows["candidate"]:
                raise XstiltsError(f"ranking problem {examples[index].get('id')!r} has no candidates")
            keys = [features[row]["key"] for row in rows["candidate"]]
            k = min(self.top_k, len(keys))
            found = nearest_neighbours(vectors[rows["query"]], vectors[rows["candidate"]], k=k)
            for row, neighbours in zip(rows["query"], found, strict=True):
                rankings[features[row]["key"]] = [keys[j] for j in neighbours]
        return rankings

    def gold(self, examples: list[dict], spec: TaskSpec) -> dict[str, list[str]]:
        return {qid: list(relevant) for problem in examples for qid, relevant in problem["relevant"].items()}

    def encoding_note(self, features: list[dict]) -> str | None:
        if not features or _is_pair_feature(features[0]):
            return None
        queries = sum(f["side"] == "query" for f in features)
        full = sum(f["full"] for f in features)
        note = f"{queries} queries ranked against {len(features) - queries} candidates"
        return note + (f"; {full} texts reach the maximum length (cut there)" if full else "")


@dataclass(frozen=True)
class MaskedLM(_Kind):
    """Masked-LM on raw text: the paper's MLM baseline, mixed into intermediate training. Not evaluated.

    Examples are {"text"}; masking (15%, 80/10/10) is transformers' DataCollatorForLanguageModeling, with
    its own seeded generator so the masks do not depend on the global random state. The head predicts one
    of the encoder's `vocab_size` tokens, so a run builds this kind for its encoder (`for_vocabulary`).
    """

    name: str = "mlm"
    head_level: str = "mlm"
    training_keys: tuple[str, ...] = ()  # labels come from masking, at collation
    perturbable: bool = False
    mask_probability: float = 0.15
    vocab_size: int = 0  # 0: not yet tied to an encoder

    @classmethod
    def for_vocabulary(cls, vocab_size: int, mask_probability: float = 0.15) -> MaskedLM:
        return cls(mask_probability=mask_probability, vocab_size=vocab_size)

    def head_outputs(self, spec: TaskSpec) -> int:
        if self.vocab_size < 1:
            raise XstiltsError("the MLM head is sized by the vocabulary: use MaskedLM.for_vocabulary")
        return self.vocab_size

    def encode(self, examples: list[dict], tokenizer, max_length: int, *, for_training: bool = False):
        from xstilts.data.mlm import mlm_features

        return mlm_features([ex["text"] for ex in examples], tokenizer, max_length)

    def collate(self, features: list[dict], tokenizer) -> dict[str, torch.Tensor]:
        """Unseeded; training builds one seeded collator per run instead (`collator`)."""
        return self.collator(tokenizer)(features)

    def collator(self, tokenizer, seed: int | None = None):
        from xstilts.data.mlm import mlm_collator

        return mlm_collator(tokenizer, mlm_probability=self.mask_probability, seed=seed)

    def forward_kwargs(self, batch: dict) -> dict:
        return {"positions": batch["labels"] != -100}

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        from xstilts.models.mlm_head import mlm_loss

        labels = batch["labels"]
        return mlm_loss(logits, labels[labels != -100])


KINDS = {
    kind.name: kind
    for kind in (
        SequenceClassification(),
        PairClassification(),
        MultipleChoice(),
        SpanQA(),
        Tagging(),
        Retrieval(),
        Mining(),
        Ranking(),
        MaskedLM(),
    )
}


def get_kind(name: str):
    try:
        return KINDS[name]
    except KeyError:
        raise unknown_name("task kind", name, KINDS) from None


def shared_heads(specs: Sequence[TaskSpec]) -> dict[str, HeadSpec]:
    """Head name -> HeadSpec for tasks trained together; tasks naming one head must agree on its shape."""
    heads: dict[str, HeadSpec] = {}
    owners: dict[str, str] = {}
    for spec in specs:
        head = get_kind(spec.kind).head(spec)
        name = spec.head_name
        if name in heads and heads[name] != head:
            raise XstiltsError(
                f"tasks {owners[name]} and {spec.name} share head {name!r} but need different heads "
                f"({heads[name]} vs {head}); give them different head names"
            )
        heads[name], owners[name] = head, owners.get(name, spec.name)
    return heads


def sequence_lengths(features: list[dict]) -> list[int]:
    """Token count of each feature (longest choice for multiple choice); used for length bucketing."""
    lengths = []
    for feature in features:
        ids = feature["input_ids"]
        lengths.append(max(len(row) for row in ids) if ids and isinstance(ids[0], list) else len(ids))
    return lengths
