"""Token tagging: first sub-token labels, truncation counted, decoding by hand, and overfitting a tiny set."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from xstilts.config import PhaseConfig
from xstilts.evaluate.task_eval import evaluate_task
from xstilts.models.checkpoint import build_model
from xstilts.models.tiny import tiny_checkpoint_dir
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.spec import TaskSpec
from xstilts.train.loop import freeze_word_embeddings, train_task

KIND = get_kind("tagging")
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
NER = TaskSpec(
    name="toy-ner",
    kind="tagging",
    source="bible",
    languages=("en",),
    metric="ner_f1",
    extra_metrics=("accuracy_tokens",),
    labels=TAGS,
)


def sentence(sid: str, pairs: list[tuple[str, str]], tags=TAGS) -> dict:
    return {"id": sid, "tokens": [w for w, _ in pairs], "tags": [tags.index(t) for _, t in pairs]}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(tiny_checkpoint_dir())


def test_the_first_sub_token_of_each_word_carries_its_tag(tokenizer):
    example = sentence(
        "s", [("Kwame", "B-PER"), ("Nkrumah", "I-PER"), ("visited", "O"), ("Donaudampfschifffahrt", "B-LOC")]
    )
    (train,) = KIND.encode([example], tokenizer, 64, for_training=True)
    (evaluation,) = KIND.encode([example], tokenizer, 64)
    pieces = tokenizer.convert_ids_to_tokens(train["input_ids"])
    assert pieces[0] == "<s>" and pieces[-1] == "</s>" and len(pieces) > len(example["tokens"]) + 2
    labelled = [i for i, label in enumerate(train["labels"]) if label != -100]
    assert labelled == evaluation["word_positions"]  # one labelled position per word, in order
    assert [train["labels"][i] for i in labelled] == example["tags"]
    assert all(pieces[i].startswith("▁") for i in labelled)  # a word's first piece starts with "▁"
    continuations = [i for i, piece in enumerate(pieces[:-1]) if i and not piece.startswith("▁")]
    assert continuations and all(train["labels"][i] == -100 for i in [0, *continuations, len(pieces) - 1])
    assert "word_positions" not in train and train["words_truncated"] == 0
    assert KIND.encoding_note([train]) is None


def test_words_past_the_window_are_counted_and_tagged_o(tokenizer):
    words = [(f"word{i}", "B-LOC" if i % 3 == 0 else "O") for i in range(30)]
    example, short = sentence("long", words), sentence("short", words[:3])
    features = KIND.encode([example, short], tokenizer, 16)
    kept = sum(p >= 0 for p in features[0]["word_positions"])
    assert (
        0 < kept < 30 and features[0]["words_truncated"] == 30 - kept and len(features[0]["input_ids"]) == 16
    )
    assert features[1]["words_truncated"] == 0
    assert f"{30 - kept} words of 1 sentences fall past the window" in KIND.encoding_note(features)
    # logits that say B-LOC everywhere: the kept words get it, the lost ones the fallback "O"
    logits = [np.tile(np.eye(len(TAGS))[TAGS.index("B-LOC")], (len(f["input_ids"]), 1)) for f in features]
    predicted = KIND.decode(logits, features, [example, short], NER)
    assert predicted[0] == ["B-LOC"] * kept + ["O"] * (30 - kept) and predicted[1] == ["B-LOC"] * 3
    assert KIND.gold([example, short], NER)[0] == [tag for _, tag in words]


def test_decoding_reads_the_first_sub_token_only(tokenizer):
    example = sentence("s", [("Nkrumah", "B-PER"), ("rests", "O")])
    (feature,) = KIND.encode([example], tokenizer, 32)
    first, second = feature["word_positions"]
    assert second - first > 1  # "Nkrumah" has more than one piece
    logits = np.zeros((len(feature["input_ids"]), len(TAGS)))
    logits[:, TAGS.index("I-LOC")] = 1.0  # continuations and specials say I-LOC ...
    logits[first, TAGS.index("B-PER")] = 5.0  # ... the first pieces say otherwise
    logits[second, TAGS.index("O")] = 5.0
    assert KIND.decode([logits], [feature], [example], NER) == [["B-PER", "O"]]


def test_the_fallback_tag_and_ignored_gold_tags(tokenizer):
    upos = ("ADJ", "NOUN", "VERB")
    spec = TaskSpec(
        name="toy-pos", kind="tagging", source="bible", languages=("en",), metric="pos_f1", labels=upos
    )
    # a tag of -100 (a CCG supertag unseen in training) is neither trained nor scored
    example = {"id": "s", "tokens": ["green", "ideas", "sleep"] * 4, "tags": [0, 1, -100] * 4}
    (train,) = KIND.encode([example], tokenizer, 8, for_training=True)
    (feature,) = KIND.encode([example], tokenizer, 8)
    kept_words = [w for w, p in enumerate(feature["word_positions"]) if p >= 0]
    trained = [example["tags"][w] for w in kept_words if example["tags"][w] != -100]
    assert [label for label in train["labels"] if label != -100] == trained and 0 < len(trained) < 8
    logits = [np.tile([0.0, 0.0, 1.0], (len(feature["input_ids"]), 1))]
    predicted = KIND.decode(logits, [feature], [example], spec)
    gold = KIND.gold([example], spec)
    assert gold == [["ADJ", "NOUN"] * 4] and len(predicted[0]) == 8
    kept = sum(p >= 0 for p, t in zip(feature["word_positions"], example["tags"], strict=True) if t != -100)
    assert predicted[0] == ["VERB"] * kept + ["ADJ"] * (8 - kept)  # no "O" in UPOS: the first tag
    with pytest.raises(ValueError, match="3 words but 2 tags"):
        KIND.encode([{"id": "x", "tokens": ["a", "b", "c"], "tags": [0, 1]}], tokenizer, 16)


def test_a_tagging_task_needs_a_tag_set():
    from xstilts.errors import XstiltsError

    with pytest.raises(XstiltsError, match="no tag set"):
        KIND.head(
            TaskSpec(name="ccg", kind="tagging", source="local", languages=("en",), metric="accuracy_tokens")
        )


SENTENCES = [
    sentence(
        "s0", [("Angela", "B-PER"), ("Merkel", "I-PER"), ("visited", "O"), ("Wolfsburg", "B-LOC"), (".", "O")]
    ),
    sentence(
        "s1",
        [
            ("Yesterday", "O"),
            ("Johannes", "B-PER"),
            ("went", "O"),
            ("to", "O"),
            ("New", "B-LOC"),
            ("Zealand", "I-LOC"),
        ],
    ),
    sentence(
        "s2",
        [
            ("The", "O"),
            ("Donaudampfschifffahrtsgesellschaft", "O"),
            ("sailed", "O"),
            ("past", "O"),
            ("Pest", "B-LOC"),
        ],
    ),
    sentence("s3", [("Marie", "B-PER"), ("Curie", "I-PER"), ("lived", "O"), ("in", "O"), ("Paris", "B-LOC")]),
    sentence(
        "s4",
        [
            ("We", "O"),
            ("met", "O"),
            ("Kwame", "B-PER"),
            ("Nkrumah", "I-PER"),
            ("in", "O"),
            ("Accra", "B-LOC"),
        ],
    ),
    sentence("s5", [("Rivers", "O"), ("near", "O"), ("Rio", "B-LOC"), ("de", "I-LOC"), ("Janeiro", "I-LOC")]),
]


def test_a_tagger_overfits_a_tiny_set(tokenizer):
    """Only right if labels sit where decoding reads them: multi-piece words and names are in the set."""
    model, tokenizer, _ = build_model("tiny-random-xlmr", {NER.head_name: KIND.head(NER)}, seed=0)
    freeze_word_embeddings(model)  # keeps the test fast
    train = KIND.encode(SENTENCES, tokenizer, 64, for_training=True)
    dev = KIND.encode(SENTENCES, tokenizer, 64)
    before = evaluate_task(model, tokenizer, NER, SENTENCES, dev, 8, "en")
    phase = PhaseConfig(
        max_steps=30,
        learning_rate=5e-3,
        head_learning_rate=2e-2,
        batch_size=6,
        warmup_ratio=0.0,
        eval_every=10,
    )
    result = train_task(
        model,
        tokenizer,
        NER,
        train,
        phase,
        dev_examples=SENTENCES,
        dev_features=dev,
        seed=0,
        mixed_precision="no",
    )
    assert before["accuracy_tokens"] < 0.5
    assert result.best_scores["accuracy_tokens"] >= 0.9 and result.best_scores["ner_f1"] >= 0.8
    after = evaluate_task(model, tokenizer, NER, SENTENCES, dev, 4, "en")
    assert after == result.best_scores  # the loop left the best step's weights in the model
    pos = evaluate_task(model, tokenizer, NER, SENTENCES, dev, 4, "en", metrics=("pos_f1",))
    assert 0.0 <= pos["pos_f1"] <= 1.0
