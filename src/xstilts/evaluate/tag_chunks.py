"""Chunks of tag sequences exactly as seqeval 0.0.12 found them, the version behind XTREME's tagging numbers.

XTREME's `evaluate.py` (google-research/xtreme) scores udpos *and* panx with seqeval's `f1_score`,
`precision_score` and `recall_score` (default, prefix mode). Its published numbers and the expected values
in its `evaluate_test.py` come from seqeval 0.0.12, the release current in 2020 (1.0 came out in October
2020; XTREME's `install_tools.sh` installs an unpinned `seqeval`). Later releases read a tag's chunk type
differently, which changes POS scores: on XTREME's own `mock_test_data` the udpos average F1 is 70.2175
with 0.0.12 (the value `evaluate_test.py` expects) and 70.3981 with seqeval 1.2.2. So xstilts does not
call seqeval; this module reproduces 0.0.12's `get_entities`, `end_of_chunk` and `start_of_chunk`
(seqeval-0.0.12 `seqeval/metrics/sequence_labeling.py`) for any input, malformed tags included, and
`tests/test_metrics.py` checks it against outputs of the real 0.0.12.

How 0.0.12 reads one tag (`split_tag`): the chunk tag is the first character, the type is the text after
the last "-", or the whole tag when there is none. "B-PER" is ("B", "PER"); "NOUN" is ("N", "NOUN");
"O" is ("O", "O"). seqeval >= 1.0 instead takes the type from the text after the first character, so
"CCONJ" and "SCONJ" both become "CONJ" there and a CCONJ predicted for an SCONJ counts as right; here
they are different types. Because only the first character is the chunk tag, UPOS tags that start with
"S" (SCONJ, SYM) are "single" chunks of one token each, and any tag that starts with "O" never opens a
chunk. A run of one UPOS tag is one chunk that must be matched as a whole.

Chunks are (type, first position, last position) over all sentences laid end to end with one "O" after
each sentence, as 0.0.12 flattens nested lists, so equal chunks in different sentences stay distinct.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from xstilts.evaluate.checks import ScoringError

OUTSIDE = "O"
# chunk tags that close the chunk they end, whatever follows
_CLOSE_AFTER = frozenset("ES")
# (previous chunk tag, chunk tag) pairs that close the previous chunk
_CLOSING = frozenset({("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")})
# chunk tags that open a chunk, whatever came before
_OPEN_AT = frozenset("BS")
# (previous chunk tag, chunk tag) pairs that open a chunk
_OPENING = frozenset({("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")})
# chunk tags for which a change of type is no boundary (0.0.12 exempts "." as well as "O")
_TYPELESS = frozenset({OUTSIDE, "."})


def split_tag(tag: str) -> tuple[str, str]:
    """(chunk tag, chunk type) of one tag as seqeval 0.0.12 reads it (prefix mode)."""
    if not tag:
        raise ScoringError("an empty tag cannot be scored")
    return tag[0], tag.rsplit("-", 1)[-1]


def chunk_ends(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    """Whether a chunk ends at the token before `current` (0.0.12's `end_of_chunk`)."""
    (prev_tag, prev_type), (tag, type_) = previous, current
    return (
        prev_tag in _CLOSE_AFTER
        or (prev_tag, tag) in _CLOSING
        or (prev_tag not in _TYPELESS and prev_type != type_)
    )


def chunk_starts(previous: tuple[str, str], current: tuple[str, str]) -> bool:
    """Whether a chunk starts at `current` (0.0.12's `start_of_chunk`)."""
    (prev_tag, prev_type), (tag, type_) = previous, current
    return tag in _OPEN_AT or (prev_tag, tag) in _OPENING or (tag not in _TYPELESS and prev_type != type_)


def _stream(sentences: Sequence[Sequence[str]]) -> Iterator[str]:
    """The sentences end to end, an "O" closing each, and one more "O" that closes the last chunk."""
    for sentence in sentences:
        yield from sentence
        yield OUTSIDE
    yield OUTSIDE


def chunks(sentences: Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """The (type, first, last) chunks of tagged sentences, positions counted over all sentences.

    As in 0.0.12, a chunk that ends is reported from the last position where one started; a boundary
    without a start (e.g. "E-A" then "X-A") therefore yields a chunk reaching back to that position.
    """
    found = []
    previous, first = (OUTSIDE, ""), 0
    for position, tag in enumerate(_stream(sentences)):
        current = split_tag(tag)
        if chunk_ends(previous, current):
            found.append((previous[1], first, position - 1))
        if chunk_starts(previous, current):
            first = position
        previous = current
    return found


def chunk_precision_recall_f1(
    predictions: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]
) -> tuple[float, float, float]:
    """Micro precision, recall and F1 over the sets of chunks, each 0 where undefined, as 0.0.12."""
    predicted, expected = set(chunks(predictions)), set(chunks(gold))
    correct = len(predicted & expected)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
