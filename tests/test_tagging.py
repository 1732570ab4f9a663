"""Token tagging: first sub-token labels, long sentences split and rejoined, unk words, decoding by hand,
and overfitting a tiny set."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from xstilts.config import PhaseConfig
from xstilts.evaluate.task_eval import evaluate_task, predict_task
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
    assert "word_positions" not in train and train["pieces"] == 1
    assert KIND.encoding_note([train]) is None


def word_initial_logits(
    features: list[dict], tokenizer, gold: list[list[str]], other: str
) -> list[np.ndarray]:
    """Logits read off the tokens alone, not off `word_positions`: the k-th piece starting with "▁" in a
    sentence's features (in order) says the k-th word's gold tag, every other position says `other`."""
    logits, seen = [], {}
    for feature in features:
        rows = np.tile(np.eye(len(TAGS))[TAGS.index(other)], (len(feature["input_ids"]), 1))
        for position, piece in enumerate(tokenizer.convert_ids_to_tokens(feature["input_ids"])):
            if piece.startswith("▁"):
                k = seen[feature["example_index"]] = seen.get(feature["example_index"], -1) + 1
                rows[position] = np.eye(len(TAGS))[TAGS.index(gold[feature["example_index"]][k])]
        logits.append(rows)
    assert {i: k + 1 for i, k in seen.items()} == {i: len(tags) for i, tags in enumerate(gold)}  # 1 per word
    return logits


def test_a_sentence_longer_than_the_window_is_split_and_every_word_predicted(tokenizer):
    """XTREME splits long sentences into pieces (utils_preprocess.py): no word is cut off or given a
    fallback tag. (Until this was done, words past the window were all tagged "O".)"""
    words = [f"Nkrumah{i}" if i % 4 == 0 else f"word{i}" for i in range(100)]  # 4 and 2 sub-tokens
    tags = [("O", "B-PER", "I-PER", "B-LOC")[(i * 7) % 4] for i in range(100)]  # never I-LOC
    example = sentence("long", list(zip(words, tags, strict=True)))
    short = sentence("short", [("Kwame", "B-PER"), ("visited", "O"), ("Accra", "B-LOC")])
    features = KIND.encode([example, short], tokenizer, 32)
    train = KIND.encode([example, short], tokenizer, 32, for_training=True)
    pieces = [f for f in features if f["example_index"] == 0]
    assert len(pieces) >= 8 and features[-1]["example_index"] == 1 and len(features) == len(pieces) + 1
    assert all(len(f["input_ids"]) <= 32 for f in features)
    assert [f["input_ids"] for f in train] == [f["input_ids"] for f in features]  # training splits alike
    # nothing is cut: the pieces, special tokens dropped, hold the whole sentence's sub-tokens in order
    whole = tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert [i for f in pieces for i in f["input_ids"][1:-1]] == whole
    assert pieces[0]["first_word"] == 0 and sum(len(f["word_positions"]) for f in pieces) == 100
    trained = [label for f in train[: len(pieces)] for label in f["labels"] if label != -100]
    assert trained == example["tags"]  # every word trained once, at its first sub-token
    assert KIND.encoding_note(features) == f"1 sentences split into {len(pieces)} pieces"
    # each word's tag is read at its own first sub-token; continuations and specials say I-LOC
    gold = [tags, ["B-PER", "O", "B-LOC"]]
    logits = word_initial_logits(features, tokenizer, gold, "I-LOC")
    assert KIND.decode(logits, features, [example, short], NER) == gold
    assert KIND.gold([example, short], NER) == gold
    reordered = list(reversed(range(len(features))))  # pieces are rejoined by their word ranges
    predicted = KIND.decode(
        [logits[i] for i in reordered], [features[i] for i in reordered], [example, short], NER
    )
    assert predicted == gold
    with pytest.raises(ValueError, match="is in no feature"):
        KIND.decode(logits[1:], features[1:], [example, short], NER)
    # and through the real inference path: one prediction per word of each sentence
    model, _, _ = build_model("tiny-random-xlmr", {NER.head_name: KIND.head(NER)}, seed=0)
    predicted = predict_task(model, tokenizer, NER, [example, short], features, 4)
    assert [len(p) for p in predicted] == [100, 3] and {t for p in predicted for t in p} <= set(TAGS)


def test_pieces_hold_at_most_125_sub_tokens_as_in_xtreme_even_in_a_longer_window(tokenizer):
    """xtreme preprocesses with --max_len 128 less 3 special tokens for XLM-R: 125 sub-tokens of words."""
    words = [f"word{i}" for i in range(100)]
    sizes = [len(tokenizer.tokenize(w)) for w in words]
    features = KIND.encode([sentence("s", [(w, "O") for w in words])], tokenizer, 256)
    inner = [len(f["input_ids"]) - 2 for f in features]
    assert len(features) == 2 and sum(inner) == sum(sizes) > 125 and inner[0] <= 125
    assert inner[0] + sizes[len(features[0]["word_positions"])] > 125  # greedy: the next word did not fit


def test_a_word_with_no_sub_token_gets_the_unk_token_and_a_prediction(tokenizer):
    """As xtreme's utils_tag.py does; before, such a word got the fallback tag."""
    assert tokenizer.tokenize("\x07") == [] and tokenizer.tokenize("") == []  # a control character
    example = sentence("s", [("Kwame", "B-PER"), ("\x07", "I-PER"), ("visited", "O"), ("", "B-LOC")])
    (train,) = KIND.encode([example], tokenizer, 32, for_training=True)
    (feature,) = KIND.encode([example], tokenizer, 32)
    pieces = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    positions = feature["word_positions"]
    assert [pieces[p] for p in positions] == ["▁Kwa", tokenizer.unk_token, "▁visite", tokenizer.unk_token]
    assert [train["labels"][p] for p in positions] == example["tags"]
    logits = np.full((len(pieces), len(TAGS)), 0.0)
    logits[:, TAGS.index("O")] = 1.0
    for position, tag in zip(positions, example["tags"], strict=True):
        logits[position, tag] = 5.0
    assert KIND.decode([logits], [feature], [example], NER) == [["B-PER", "I-PER", "O", "B-LOC"]]
    assert KIND.encoding_note([feature]) == "2 words with no sub-token encoded as the unk token"


def test_a_word_longer_than_a_whole_window_keeps_its_first_sub_tokens(tokenizer):
    long_word = "Donaudampfschifffahrtsgesellschaft"  # 7 sub-tokens
    example = sentence("s", [("The", "O"), (long_word, "B-LOC"), ("sailed", "O")])
    features = KIND.encode([example], tokenizer, 6)  # room for 4 sub-tokens of words
    assert [f["first_word"] for f in features] == [0, 1, 2]
    assert [f["words_cut"] for f in features] == [0, 1, 0]
    cut = features[1]
    assert cut["input_ids"][1:-1] == tokenizer(long_word, add_special_tokens=False)["input_ids"][:4]
    assert cut["word_positions"] == [1]
    assert cut["labels"] == [-100, TAGS.index("B-LOC")] + [-100] * 4  # its first sub-token is labelled
    assert KIND.encoding_note(features) == (
        "1 sentences split into 3 pieces; 1 words longer than a whole piece keep only their first sub-tokens"
    )
    logits = word_initial_logits(features, tokenizer, [["O", "B-LOC", "O"]], "I-PER")
    assert KIND.decode(logits, features, [example], NER) == [["O", "B-LOC", "O"]]
    with pytest.raises(ValueError, match="no room for words"):
        KIND.encode([example], tokenizer, 2)


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


def test_ignored_gold_tags_are_neither_trained_nor_scored_across_pieces(tokenizer):
    """Was a fallback-tag test: with truncation the words past the window got UPOS's first tag. Now the
    12-word sentence is split in two pieces of 6 sub-tokens and every scored word is predicted."""
    upos = ("ADJ", "NOUN", "VERB")
    spec = TaskSpec(
        name="toy-pos", kind="tagging", source="bible", languages=("en",), metric="pos_f1", labels=upos
    )
    # a tag of -100 (a CCG supertag unseen in training) is neither trained nor scored
    example = {"id": "s", "tokens": ["green", "ideas", "sleep"] * 4, "tags": [0, 1, -100] * 4}
    train = KIND.encode([example], tokenizer, 8, for_training=True)
    features = KIND.encode([example], tokenizer, 8)
    assert len(train) == len(features) == 2 and all(len(f["input_ids"]) <= 8 for f in features)
    assert [label for f in train for label in f["labels"] if label != -100] == [0, 1] * 4
    logits = [np.tile([0.0, 0.0, 1.0], (len(f["input_ids"]), 1)) for f in features]
    assert KIND.decode(logits, features, [example], spec) == [["VERB"] * 8]
    assert KIND.gold([example], spec) == [["ADJ", "NOUN"] * 4]
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
