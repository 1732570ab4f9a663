"""Representations at every layer: one forward pass per batch, equal to `embed`, cached and memory-mapped."""

import json

import numpy as np
import pytest
import torch

from xstilts.analysis.representations import (
    RepresentationCache,
    cached_layers,
    center,
    extract_layers,
    representation_key,
    texts_sha256,
)
from xstilts.evaluate.inference import embed
from xstilts.models.checkpoint import build_model, save_checkpoint
from xstilts.models.loading import load_encoder
from xstilts.tasks.kinds import get_kind

TINY = "tiny-random-xlmr"
TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "Au commencement, Dieu créa les cieux et la terre.",
    "Am Anfang schuf Gott Himmel und Erde.",
    "short",
    "a",
    "En el principio creó Dios los cielos y la tierra, y la tierra estaba desordenada y vacía.",
    "Na początku Bóg stworzył niebo i ziemię.",
    "the river number 7",
    "the mountain number 8 and a rather longer tail of words to make it the longest one by far, by far",
    "",
]


@pytest.fixture(scope="module")
def tiny():
    encoder, tokenizer = load_encoder(TINY)
    return encoder, tokenizer


class ForwardCounter:
    def __init__(self, module):
        self.calls = 0
        self.handle = module.register_forward_hook(self.hook)

    def hook(self, *_):
        self.calls += 1

    def remove(self):
        self.handle.remove()


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_every_layer_equals_embed_at_that_layer(tiny, pooling):
    encoder, tokenizer = tiny
    vectors = extract_layers(encoder, tokenizer, TEXTS, pooling=pooling, batch_size=3, max_length=32)
    n_layers = encoder.config.num_hidden_layers
    assert vectors.shape == (n_layers + 1, len(TEXTS), encoder.config.hidden_size)
    assert vectors.dtype == np.float32
    kind = get_kind("retrieval")
    features = kind.encode([{"text": t} for t in TEXTS], tokenizer, 32)
    for layer in range(n_layers + 1):
        expected = embed(encoder, kind, tokenizer, features, layer, pooling, batch_size=3)
        np.testing.assert_allclose(vectors[layer], expected, atol=1e-5, rtol=0)
    picked = extract_layers(encoder, tokenizer, TEXTS, layers=[2, 0], pooling=pooling, max_length=32)
    np.testing.assert_allclose(picked, vectors[[2, 0]], atol=1e-5, rtol=0)


@pytest.mark.parametrize("layers", [None, [1], [0, 1, 2]])
def test_one_forward_pass_per_batch_whatever_the_layers(tiny, layers):
    encoder, tokenizer = tiny
    counter = ForwardCounter(encoder)
    try:
        extract_layers(encoder, tokenizer, TEXTS, layers=layers, batch_size=4)
    finally:
        counter.remove()
    assert counter.calls == 3  # ceil(10 / 4)


def test_unknown_layer_or_pooling_is_an_error(tiny):
    encoder, tokenizer = tiny
    with pytest.raises(ValueError, match="hidden_states 0..2"):
        extract_layers(encoder, tokenizer, TEXTS, layers=[3])
    with pytest.raises(ValueError, match="unknown pooling"):
        extract_layers(encoder, tokenizer, TEXTS, pooling="max")


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_padding_does_not_change_a_sentence_vector(tiny, pooling):
    encoder, tokenizer = tiny
    sentence, long = "a short sentence", " ".join(["many more words"] * 30)
    alone = extract_layers(encoder, tokenizer, [sentence], pooling=pooling)
    batched = extract_layers(encoder, tokenizer, [long, sentence], pooling=pooling, batch_size=2)
    np.testing.assert_allclose(batched[:, 1], alone[:, 0], atol=1e-5, rtol=0)
    assert not np.allclose(batched[:, 0], batched[:, 1])


def test_input_order_is_kept(tiny):
    encoder, tokenizer = tiny
    forward = extract_layers(encoder, tokenizer, TEXTS, batch_size=4)
    backward = extract_layers(encoder, tokenizer, TEXTS[::-1], batch_size=4)
    np.testing.assert_allclose(backward[:, ::-1], forward, atol=1e-5, rtol=0)


def test_centering_gives_zero_mean_per_layer(tiny):
    encoder, tokenizer = tiny
    vectors = extract_layers(encoder, tokenizer, TEXTS)
    centered = center(vectors)
    assert centered.shape == vectors.shape and centered.dtype == np.float32
    np.testing.assert_allclose(centered.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(center(vectors[1]), centered[1], atol=1e-6)
    np.testing.assert_allclose(centered[:, 0] - centered[:, 1], vectors[:, 0] - vectors[:, 1], atol=1e-5)


class CountingLoader:
    """Stands in for loading the encoder: counts loads and forward calls."""

    def __init__(self, encoder, tokenizer):
        self.encoder, self.tokenizer = encoder, tokenizer
        self.loads = 0
        self.counter = ForwardCounter(encoder)

    def __call__(self, source, device):
        self.loads += 1
        return self.encoder, self.tokenizer


@pytest.fixture
def loader(tiny):
    counting = CountingLoader(*tiny)
    yield counting
    counting.counter.remove()


def test_second_call_reads_the_cache_without_the_encoder(tiny, tmp_path, loader):
    cache = RepresentationCache(tmp_path)
    first = cached_layers(TINY, TEXTS, cache=cache, batch_size=4, encoder_loader=loader)
    assert loader.loads == 1 and loader.counter.calls == 3
    loader.counter.calls = 0
    second = cached_layers(TINY, TEXTS, cache=cache, batch_size=4, encoder_loader=loader)
    assert loader.loads == 1 and loader.counter.calls == 0
    assert isinstance(second, np.memmap) and not second.flags.writeable
    np.testing.assert_array_equal(np.asarray(second), np.asarray(first))
    direct = extract_layers(*tiny, TEXTS)
    np.testing.assert_allclose(second, direct, atol=1e-5, rtol=0)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["shape"] == list(direct.shape)
    assert meta["key"]["pooling"] == "mean" and meta["key"]["layers"] == [0, 1, 2]
    assert meta["key"]["texts"] == texts_sha256(TEXTS)


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    """A phase checkpoint (with a head) of the tiny model with perturbed encoder weights."""
    model, tokenizer, _ = build_model(TINY, {"toy": 2}, seed=0)
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight.mul_(1.5)
    path = tmp_path_factory.mktemp("ckpt") / "phase"
    save_checkpoint(model, tokenizer, path, {"phase": "test"})
    return path, model.encoder


def test_keys_differ_in_every_part(other_checkpoint):
    base = representation_key(TINY, TEXTS)
    assert base == representation_key(TINY, list(TEXTS))
    variants = [
        representation_key(TINY, TEXTS, pooling="first"),
        representation_key(TINY, TEXTS, layers=[0, 1]),
        representation_key(TINY, TEXTS, max_length=64),
        representation_key(TINY, TEXTS[:-1]),
        representation_key(TINY, TEXTS[::-1]),
        representation_key(TINY, ["ab", "c"]),
        representation_key(other_checkpoint[0], TEXTS),
    ]
    assert representation_key(TINY, ["a", "bc"]).digest() != variants[5].digest()
    digests = {key.digest() for key in variants} | {base.digest()}
    assert len(digests) == len(variants) + 1
    other = representation_key(other_checkpoint[0], TEXTS)
    assert other.tokenizer == base.tokenizer and other.checkpoint != base.checkpoint


def test_a_phase_checkpoint_is_loaded_on_a_miss(other_checkpoint, tiny, tmp_path):
    path, encoder = other_checkpoint
    vectors = cached_layers(path, TEXTS[:4], cache=RepresentationCache(tmp_path), device="cpu")
    expected = extract_layers(encoder, tiny[1], TEXTS[:4])
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)
    assert not np.allclose(vectors, extract_layers(*tiny, TEXTS[:4]))


def test_a_truncated_cache_file_is_recomputed(tmp_path, loader):
    cache = RepresentationCache(tmp_path)
    first = np.array(cached_layers(TINY, TEXTS, cache=cache, encoder_loader=loader))
    array_path, meta_path = cache.paths(representation_key(TINY, TEXTS))
    data = array_path.read_bytes()
    array_path.write_bytes(data[: len(data) - 64])
    again = cached_layers(TINY, TEXTS, cache=cache, encoder_loader=loader)
    assert loader.loads == 2
    np.testing.assert_array_equal(np.asarray(again), first)
    assert array_path.stat().st_size == len(data)
    # a header cut short, and a JSON that disagrees on the shape, are caught too
    array_path.write_bytes(data[:40])
    cached_layers(TINY, TEXTS, cache=cache, encoder_loader=loader)
    assert loader.loads == 3
    meta = json.loads(meta_path.read_text())
    meta["shape"][1] += 1
    meta_path.write_text(json.dumps(meta))
    cached_layers(TINY, TEXTS, cache=cache, encoder_loader=loader)
    assert loader.loads == 4
    cached_layers(TINY, TEXTS, cache=cache, encoder_loader=loader)
    assert loader.loads == 4
