"""Adapters: one raw record of a dataset (a hub row or a record read from an original file) -> examples.

`ADAPTERS[name](record, spec, lang)` returns a list of examples in the schema of the task kind (see
`spec.py`); an empty list skips the record (no gold label, another language's row). Labels become int
indices into `spec.labels`. An example carries an "id" only when the dataset has one; `sources.py` fills
in the rest. What is wrong with a record raises `RecordError`, which the caller prefixes with where the
record came from (`file:line` or hub row).

Each adapter accepts both the hub's schema and the original release's, since both feed the same task:

- nli / anli: hub {premise, hypothesis, label: 0-2 or -1}; MNLI/SNLI JSONL {sentence1, sentence2,
  gold_label: "entailment"... or "-"}; ANLI JSONL {context, hypothesis, label: "e"/"n"/"c"}; XTREME TSV
  {sentence1, sentence2, label}.
- xnli: google/xtreme "XNLI" {language, sentence1, sentence2, gold_label} (all languages in one config);
  XNLI-MT's "contradictory" is read as contradiction.
- pawsx: {sentence1, sentence2, label: "0"/"1"}.
- qqp: hub {question1, question2, label, idx}; GLUE TSV {id, qid1, qid2, question1, question2, is_duplicate}.
- squad (SQuAD, XQuAD, MLQA) and tydiqa: {id, question, context, answers: {text, answer_start}};
  google/xtreme's "tydiqa" mixes languages: rows whose id starts with "<language name>-" are kept. XTREME's
  `utils_preprocess.py` writes the training set per language with the prefix cut off: ids that start with
  no TyDiQA language name are kept too.
- hellaswag: {ctx, endings, label} (label a string on the hub, an int in the JSONL, "" on test).
- cosmosqa: {context, question, answer0..answer3, label}; the question is appended to the context.
- commonsenseqa: hub {question, choices: {label, text}, answerKey}; JSONL {question: {stem, choices:
  [{label, text}]}, answerKey}.
- siqa: {context, question, answerA, answerB, answerC} with the label as the hub's "label" ("1".."3", one-
  based; older hub versions keep a trailing newline), as the AI2 release's `<split>-labels.lst` line (the
  `jsonl_labels` reader puts it in "label"), or as "correct" ("A".."C") in the socialIQa_v1.4 files
  XTREME-R's download script fetches. The question is appended to the context (XTREME-R
  `third_party/run_xcopa.py`: f"{context} {question}").
- copa (English COPA and XCOPA): {premise, choice1, choice2, question: "cause" | "effect", label: 0 | 1,
  idx}; SuperGLUE's test label -1 skips the record. The context is f"{premise} What was the {question}?",
  as XTREME-R's `third_party/run_xcopa.py` builds it ("What was the cause?" / "What was the effect?").
- udpos / panx / ccg: hub {tokens, pos_tags | ner_tags} (ClassLabel ints, or tag strings) or local
  {tokens, tags} (strings); PAN-X words lose the "<lang>:" prefix of the WikiANN files.
- bucc: hub rows {source_sentence, target_sentence, source_lang, target_lang} (google/xtreme stores the
  sentence ids in the *_lang fields) or the local reader's {source, target, gold}; both become a partial
  mining example {"source": {id: text}, "target": {id: text}, "gold": [[source_id, target_id]]}.
- tatoeba: {source_sentence, target_sentence} -> {"text", "translation"} (stripped: the hub keeps newlines).
- lareqa / xquad_r: a SQuAD-style question record (the hub's, or `squad_json`'s, which keeps XQuAD-R's
  per-paragraph `sentence_breaks`) -> a ranking part: the question (id "<question id>_<lang>", XTREME's
  `Question.uid`), every sentence of its paragraph as a candidate (id "<lang>_<paragraph hash>_<position>";
  text: sentence + paragraph) and the sentence holding the first answer's start as the answer to the
  question id, which its translations share. A question whose answer starts in no sentence is skipped, as
  XTREME's utils_lareqa does. lareqa (SQuAD) infers the sentences as XTREME does for SQuAD
  (`sentence_breaks.py`); xquad_r requires the released ones, so the hub's xquad_r rows (without them) are
  refused.
- mewslix_mentions: Mewsli-X WikiNews {context, mentions: [...]} (or one `mention`), other languages'
  records skipped -> a part with each mention as a query relevant to its gold entity id.
- mewslix_entity: a candidate-set entity {entity_id, description, sentence_spans, ...} -> a part with the
  entity as a candidate answering its own id.
- mewslix_pair: a Wikipedia {contextual_mention: {context, mention}, entity} pair -> a part with both.
  Ranking parts and their texts: `ranking.py`, `ranking_text.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from xstilts.errors import XstiltsError
from xstilts.tasks import ranking_text
from xstilts.tasks.languages import TYDIQA_PREFIX
from xstilts.tasks.sentence_breaks import sentence_breaks
from xstilts.tasks.spec import TaskSpec

Adapter = Callable[[dict, TaskSpec, str], list[dict]]

# Tokens whose tag is not in a tag set read from the training file (CCG dev/test supertags unseen in
# training) get this index: PyTorch's cross-entropy ignore_index, so they are neither trained nor scored.
IGNORED_TAG = -100

_NO_LABEL = {"", "-"}  # MNLI/SNLI "-": no annotator consensus; HellaSwag/CommonsenseQA test: ""
_LABEL_ALIASES = {"e": "entailment", "n": "neutral", "c": "contradiction", "contradictory": "contradiction"}


class RecordError(XstiltsError):
    """What is wrong with one raw record; the caller adds where the record is."""


def _get(record: dict, *names: str):
    """The first of `names` present (and not None) in the record."""
    for name in names:
        value = record.get(name)
        if value is not None:
            return value
    raise RecordError(f"missing field {' or '.join(repr(n) for n in names)}")


def _text(record: dict, *names: str) -> str:
    value = _get(record, *names)
    if not isinstance(value, str):
        raise RecordError(f"field {names[0]!r} should be text, got {type(value).__name__}")
    return value


def _with_id(example: dict, record: dict, *names: str) -> dict:
    for name in names:
        value = record.get(name)
        if value is not None and value != "":
            return {"id": str(value), **example}
    return example


def label_index(value, labels: tuple[str, ...]) -> int | None:
    """A raw label -> index into `labels`; None for "no gold label" (-1, "-", "")."""
    if isinstance(value, bool):
        raise RecordError(f"bad label {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text in _NO_LABEL:
            return None
        if text in labels:
            return labels.index(text)
        alias = _LABEL_ALIASES.get(text.lower())
        if alias in labels:
            return labels.index(alias)
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            raise RecordError(f"unknown label {value!r}; valid labels: {', '.join(labels)}")
    if isinstance(value, int):
        if value == -1:
            return None
        if 0 <= value < len(labels):
            return value
        raise RecordError(f"label {value} out of range for {len(labels)} labels ({', '.join(labels)})")
    raise RecordError(f"bad label {value!r}")


def _pair(record: dict, spec: TaskSpec, a: tuple[str, ...], b: tuple[str, ...], label: tuple[str, ...], ids):
    index = label_index(_get(record, *label), spec.labels)
    if index is None:
        return []
    example = {"text_a": _text(record, *a), "text_b": _text(record, *b), "label": index}
    return [_with_id(example, record, *ids)]


def nli(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    premise, hypothesis = ("premise", "sentence1", "context"), ("hypothesis", "sentence2")
    examples = _pair(record, spec, premise, hypothesis, ("label", "gold_label"), ("pairID", "uid", "id"))
    genre = record.get("genre")
    if genre:  # MNLI and the original XNLI-1.0 files name each pair's genre: its domain in domain shifts
        for example in examples:
            example["domain"] = str(genre)
    if "original_a" in record:  # a translate-train row (XTREME's XNLI files) keeps the English pair
        for example in examples:
            example["original"] = [_text(record, "original_a"), _text(record, "original_b")]
    return examples


def xnli(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    if record.get("language") not in (None, lang):
        return []
    return nli(record, spec, lang)


def pawsx(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    return _pair(record, spec, ("sentence1",), ("sentence2",), ("label",), ("id",))


def qqp(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    return _pair(record, spec, ("question1",), ("question2",), ("label", "is_duplicate"), ("id",))


def squad(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    answers = _get(record, "answers")
    if not isinstance(answers, dict):
        raise RecordError(f"'answers' should be {{'text': [...], 'answer_start': [...]}}, got {answers!r}")
    texts, starts = list(_get(answers, "text")), [int(s) for s in _get(answers, "answer_start")]
    if len(texts) != len(starts):
        raise RecordError(f"{len(texts)} answer texts but {len(starts)} answer starts")
    if any(not text.strip() for text in texts):
        raise RecordError("empty answer text (XTREME's download script blanks the answers of test files)")
    context = _text(record, "context")
    for number, text in enumerate(texts, start=1):
        if text not in context:  # the span would be guessed from nothing; the release is broken here
            raise RecordError(f"answer {number} {text!r} is not in the context; fix or remove the question")
    example = {
        "question": _text(record, "question"),
        "context": context,
        "answers": {"text": texts, "answer_start": starts},
    }
    return [_with_id(example, record, "id")]


def tydiqa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    prefix = str(_get(record, "id")).split("-", 1)[0]
    if prefix != TYDIQA_PREFIX[lang] and prefix in TYDIQA_PREFIX.values():
        return []
    return squad(record, spec, lang)


def _choice_example(context: str, choices: list, label, spec: TaskSpec, record: dict, *ids: str) -> list:
    if len(choices) != len(spec.labels):
        raise RecordError(f"expected {len(spec.labels)} choices, got {len(choices)}")
    index = label_index(label, spec.labels)
    if index is None:
        return []
    return [
        _with_id({"context": context, "choices": [str(c) for c in choices], "label": index}, record, *ids)
    ]


def hellaswag(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    return _choice_example(
        _text(record, "ctx"), list(_get(record, "endings")), _get(record, "label"), spec, record, "ind"
    )


def cosmosqa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    context = f"{_text(record, 'context').strip()} {_text(record, 'question').strip()}"
    choices = [_text(record, f"answer{i}") for i in range(len(spec.labels))]
    return _choice_example(context, choices, _get(record, "label"), spec, record, "id")


def commonsenseqa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    question = _get(record, "question")
    if isinstance(question, dict):  # original JSONL: {"stem", "choices": [{"label", "text"}]}
        stem = _text(question, "stem")
        pairs = [(_text(c, "label"), _text(c, "text")) for c in _get(question, "choices")]
    else:  # hub: "question" text, "choices": {"label": [...], "text": [...]}
        stem = _text(record, "question")
        choices = _get(record, "choices")
        pairs = list(zip(_get(choices, "label"), _get(choices, "text"), strict=True))
    by_label = dict(pairs)
    if sorted(by_label) != sorted(spec.labels) or len(pairs) != len(spec.labels):
        raise RecordError(f"choice labels {[p[0] for p in pairs]} are not {', '.join(spec.labels)}")
    choices = [by_label[label] for label in spec.labels]
    return _choice_example(stem, choices, _get(record, "answerKey"), spec, record, "id")


def siqa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    raw = _get(record, "label", "correct")
    text, count = str(raw).strip(), len(spec.labels)
    index = int(text) - 1 if text.isdigit() else spec.labels.index(text) if text in spec.labels else -1
    if isinstance(raw, bool) or not 0 <= index < count:  # digits count from one: "1".."3"
        raise RecordError(f"bad Social IQa label {raw!r}: expected 1-{count} or {'/'.join(spec.labels)}")
    context = f"{_text(record, 'context').strip()} {_text(record, 'question').strip()}"
    choices = [_text(record, f"answer{name}") for name in spec.labels]
    return _choice_example(context, choices, index, spec, record)


def copa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    question = _text(record, "question").strip()
    if question not in ("cause", "effect"):
        raise RecordError(f"COPA question must be 'cause' or 'effect', got {question!r}")
    context = f"{_text(record, 'premise').strip()} What was the {question}?"
    choices = [_text(record, "choice1"), _text(record, "choice2")]
    return _choice_example(context, choices, _get(record, "label"), spec, record, "idx")


def _tag_indices(tags: list, labels: tuple[str, ...], *, unseen_ok: bool) -> list[int]:
    indices = []
    for tag in tags:
        if isinstance(tag, int) and not isinstance(tag, bool):
            if not 0 <= tag < len(labels):
                raise RecordError(f"tag index {tag} out of range for {len(labels)} tags")
            indices.append(tag)
        elif isinstance(tag, str) and tag in labels:
            indices.append(labels.index(tag))
        elif isinstance(tag, str) and unseen_ok:
            indices.append(IGNORED_TAG)
        else:
            shown = ", ".join(labels) if len(labels) <= 40 else f"{len(labels)} tags"
            raise RecordError(f"unknown tag {tag!r}; valid tags: {shown}")
    return indices


def _tagging(record: dict, spec: TaskSpec, tokens: list[str], *, unseen_ok: bool = False) -> list[dict]:
    tags = list(_get(record, "tags", "pos_tags", "ner_tags"))
    if len(tokens) != len(tags):
        raise RecordError(f"{len(tokens)} tokens but {len(tags)} tags")
    if not tokens:
        return []
    return [{"tokens": tokens, "tags": _tag_indices(tags, spec.labels, unseen_ok=unseen_ok)}]


def udpos(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    return _tagging(record, spec, [str(t) for t in _get(record, "tokens")])


def panx(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    prefix = f"{lang}:"
    tokens = [
        t[len(prefix) :] if t.startswith(prefix) and len(t) > len(prefix) else t
        for t in _get(record, "tokens")
    ]
    return _tagging(record, spec, tokens)


def ccg(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    """CCG supertags; the tag set is the training file's, so unseen dev/test tags become IGNORED_TAG."""
    return _tagging(record, spec, [str(t) for t in _get(record, "tokens")], unseen_ok=True)


def bucc(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    if "gold" in record:  # the local reader already assembled the whole corpus
        return [
            {"source": dict(record["source"]), "target": dict(record["target"]), "gold": list(record["gold"])}
        ]
    source_id, target_id = str(_get(record, "source_lang")), str(_get(record, "target_lang"))
    return [
        {
            "source": {source_id: _text(record, "source_sentence").strip()},
            "target": {target_id: _text(record, "target_sentence").strip()},
            "gold": [[source_id, target_id]],
        }
    ]


def tatoeba(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    return [
        {
            "text": _text(record, "source_sentence").strip(),
            "translation": _text(record, "target_sentence").strip(),
        }
    ]


def _answers(record: dict) -> tuple[list[str], list[int]]:
    answers = _get(record, "answers")
    if not isinstance(answers, dict):
        raise RecordError(f"'answers' should be {{'text': [...], 'answer_start': [...]}}, got {answers!r}")
    texts, starts = list(_get(answers, "text")), list(_get(answers, "answer_start"))
    if not starts:
        raise RecordError("no answer: the answer's sentence is what a question retrieves")
    if len(texts) != len(starts):
        raise RecordError(f"{len(texts)} answer texts but {len(starts)} answer starts")
    if any(isinstance(start, bool) or not isinstance(start, int) for start in starts):
        raise RecordError(f"field 'answers.answer_start' should hold integers, got {starts!r}")
    return texts, starts


def _spans(value, length: int, field: str) -> list[tuple[int, int]]:
    """[start, end] pairs or {"start", "end"} dicts (Mewsli-X) inside a text of `length` characters."""
    if not isinstance(value, list):
        raise RecordError(f"field {field!r} should be a list of spans, got {type(value).__name__}")
    spans = []
    for i, span in enumerate(value):
        pair = (span.get("start"), span.get("end")) if isinstance(span, dict) else span
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise RecordError(f"field '{field}[{i}]' should be a (start, end) span, got {span!r}")
        try:
            spans.append(ranking_text.check_span(*pair, length, f"field '{field}[{i}]'"))
        except ranking_text.SpanError as err:
            raise RecordError(str(err)) from None
    return spans


_NO_BREAKS = (
    "no 'sentence_breaks': XQuAD-R's candidates are its released sentences, which the hub's xquad_r rows "
    "leave out (and English rules cannot recover them for ar, hi, th or zh); put the original files "
    "(github google-research-datasets/lareqa, xquad-r/<lang>.json) under <data_dir>/lareqa/xquad-r/"
)


def _lareqa_part(record: dict, lang: str, *, released_breaks: bool) -> list[dict]:
    context, question, qid = _text(record, "context"), _text(record, "question"), str(_get(record, "id"))
    start = _answers(record)[1][0]  # XTREME's processors use the first answer
    given = record.get("sentence_breaks")
    if given is None and released_breaks:
        raise RecordError(_NO_BREAKS)
    breaks = _spans(given, len(context), "sentence_breaks") if given is not None else sentence_breaks(context)
    answer = next((i for i, (s, e) in enumerate(breaks) if s <= start < e), None)
    if answer is None:
        return []
    paragraph = hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]
    ids = [f"{lang}_{paragraph}_{i}" for i in range(len(breaks))]
    query = f"{qid}_{lang}"
    return [
        {
            "language": lang,
            "queries": {query: question},
            "candidates": {
                cid: ranking_text.lareqa_candidate(context[s:e], context)
                for cid, (s, e) in zip(ids, breaks, strict=True)
            },
            "relevant": {query: [qid]},
            "answers": {qid: [ids[answer]]},
        }
    ]


def lareqa(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    """SQuAD v1.1 as retrieval: sentences inferred as XTREME infers them for SQuAD (or as given)."""
    return _lareqa_part(record, lang, released_breaks=False)


def xquad_r(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    """XQuAD-R: its released sentence breaks are required."""
    return _lareqa_part(record, lang, released_breaks=True)


def _shown(path: str) -> str:
    return re.sub(r"\.(\d+)", r"[\1]", path)


def _field(record: dict, path: str, kind: type):
    """A nested field by its dotted path (list items by number), of type `kind`; errors name the path."""
    value, names = record, path.split(".")
    for depth, name in enumerate(names):
        if isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        elif isinstance(value, dict):
            value = value.get(name)
        else:
            raise RecordError(f"field {_shown('.'.join(names[:depth]))!r} should be an object")
        if value is None:
            raise RecordError(f"missing field {_shown(path)!r}")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordError(f"field {_shown(path)!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _mention(record: dict, text: str, sentences: list[tuple[int, int]], path: str) -> tuple[str, str, str]:
    """(example id, gold entity id, query text) of the Mewsli-X mention at `path` (utils_mewslix
    `Mention`: its span must be the context's text there)."""
    example_id = _field(record, f"{path}.example_id", str)
    entity_id = _field(record, f"{path}.entity_id", str).strip()
    span = _field(record, f"{path}.mention_span", dict)
    where = _shown(f"{path}.mention_span")
    try:
        bounds = (span.get("start"), span.get("end"))
        start, end = ranking_text.check_span(*bounds, len(text), f"field {where!r}")
        query = ranking_text.mention_query(text, sentences, start, end)
    except ranking_text.SpanError as err:
        raise RecordError(f"mention {example_id}: {err}") from None
    if span.get("text") is not None and span["text"] != text[start:end]:
        raise RecordError(f"field '{where}.text' {span['text']!r} is not the context's {text[start:end]!r}")
    if not entity_id:
        raise RecordError(
            f"field {_shown(path + '.entity_id')!r} is empty: XTREME's download script blanks the test "
            "labels (utils_preprocess.py, mewslix_preprocess); use the Mewsli-X release's "
            "wikinews_mentions-test.jsonl (get-mewsli-x.sh), whose other languages' lines are skipped, "
            "or the hub"
        )
    return example_id, entity_id, query


def _context(record: dict, path: str) -> tuple[str, list[tuple[int, int]]]:
    """The text and sentence spans of a Mewsli-X context (utils_mewslix `Context`)."""
    text = _field(record, f"{path}.text", str)
    if not text:
        raise RecordError(
            f"field '{path}.text' is empty: the released wikinews_mentions_no_text files omit the article "
            "text; get-mewsli-x.sh restores it into wikinews_mentions-<split>.jsonl"
        )
    spans = _spans(_field(record, f"{path}.sentence_spans", list), len(text), f"{path}.sentence_spans")
    return text, spans


def mewslix_mentions(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    if _field(record, "context.language", str) != lang:
        return []
    text, sentences = _context(record, "context")
    if "mention" in record:  # one mention per line (utils_mewslix `ContextualMention`)
        paths = ["mention"]
    else:
        paths = [f"mentions.{i}" for i in range(len(_field(record, "mentions", list)))]
    queries, relevant = {}, {}
    for path in paths:
        example_id, entity_id, query = _mention(record, text, sentences, path)
        queries[example_id] = query
        relevant[example_id] = [entity_id]
    return [{"language": lang, "queries": queries, "relevant": relevant}] if queries else []


def _entity(record: dict, prefix: str = "") -> tuple[str, str]:
    """(entity id, description text) of a Mewsli-X entity (utils_mewslix `Entity`)."""
    entity_id = _field(record, f"{prefix}entity_id", str)
    description = _field(record, f"{prefix}description", str)
    field = f"{prefix}sentence_spans"
    spans = _spans(_field(record, field, list), len(description), field)
    return entity_id, ranking_text.entity_text(description, spans)


def mewslix_entity(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    entity_id, text = _entity(record)
    return [{"language": None, "candidates": {entity_id: text}, "answers": {entity_id: [entity_id]}}]


def mewslix_pair(record: dict, spec: TaskSpec, lang: str) -> list[dict]:
    text, sentences = _context(record, "contextual_mention.context")
    example_id, entity_id, query = _mention(record, text, sentences, "contextual_mention.mention")
    gold, description = _entity(record, "entity.")
    if gold != entity_id:
        raise RecordError(f"the mention's entity_id {entity_id!r} is not the pair's entity {gold!r}")
    return [
        {
            "language": _field(record, "contextual_mention.context.language", str),
            "queries": {example_id: query},
            "candidates": {gold: description},
            "relevant": {example_id: [gold]},
            "answers": {gold: [gold]},
        }
    ]


ADAPTERS: dict[str, Adapter] = {
    "nli": nli,
    "anli": nli,
    "xnli": xnli,
    "pawsx": pawsx,
    "qqp": qqp,
    "squad": squad,
    "tydiqa": tydiqa,
    "hellaswag": hellaswag,
    "cosmosqa": cosmosqa,
    "commonsenseqa": commonsenseqa,
    "siqa": siqa,
    "copa": copa,
    "udpos": udpos,
    "panx": panx,
    "ccg": ccg,
    "bucc": bucc,
    "tatoeba": tatoeba,
    "lareqa": lareqa,
    "xquad_r": xquad_r,
    "mewslix_mentions": mewslix_mentions,
    "mewslix_entity": mewslix_entity,
    "mewslix_pair": mewslix_pair,
}
