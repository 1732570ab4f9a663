"""Intermediate training on several tasks at once, with the MLM baseline and with translated data."""

from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config import load_config
from xstilts.errors import XstiltsError
from xstilts.models.checkpoint import read_meta
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore

LOCAL = Path(__file__).parent / "fixtures" / "local"

BASE = """\
name: {name}
model: tiny-random-xlmr
output_dir: {out}
data_dir: {data}
intermediate: [{intermediate}]
targets: [bible-genre]
languages: [en, de]
test_examples: 16
intermediate_training: {{max_steps: 6, batch_size: 2, train_examples: 16, dev_examples: 8, max_length: 64}}
target_training: {{max_steps: 2, batch_size: 8, train_examples: 16, dev_examples: 8}}
mixtures:
{mixtures}
"""


def run(tmp_path, name: str, intermediate: str, mixtures: str) -> tuple[Pipeline, str]:
    path = tmp_path / f"{name}.yaml"
    text = BASE.format(
        name=name, out=tmp_path / "runs", data=LOCAL, intermediate=intermediate, mixtures=mixtures
    )
    path.write_text(text)
    console = Console(record=True, width=220)
    pipeline = Pipeline(load_config(path), console)
    pipeline.run()
    return pipeline, console.export_text()


def test_tasks_trained_together_share_the_heads_the_config_names(tmp_path):
    mixtures = """\
  nli-and-more:
    tasks: [mnli, anli-plus, hellaswag]
    sampler: temperature
    temperature: 2.0
    heads: {mnli: nli, anli-plus: nli}
    batch_size: {hellaswag: 1}
"""
    pipeline, log = run(tmp_path, "mix", "nli-and-more", mixtures)
    checkpoint = pipeline.layout.checkpoint_of(0, "nli-and-more")
    meta = read_meta(checkpoint)
    assert set(meta["heads"]) == {"nli", "hellaswag"}  # one NLI head for MNLI and ANLI+
    assert meta["tasks"] == ["mnli", "anli-plus", "hellaswag"]
    rows = ResultsStore.in_run_dir(pipeline.run_dir).rows(phase="intermediate-dev")
    assert {(r["intermediate"], r["target"]) for r in rows} == {
        ("nli-and-more", "mnli"),
        ("nli-and-more", "anli-plus"),
        ("nli-and-more", "hellaswag"),
    }
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    draws = log.split("steps per task: ")[1].split(")")[0]
    counts = dict(item.rsplit(" ", 1) for item in draws.split(", "))
    assert set(counts) == {"mnli", "anli-plus", "hellaswag"} and sum(map(int, counts.values())) == 6
    assert "dropped heads: ['hellaswag', 'nli']" in log  # the target starts with a fresh head


def test_mlm_baseline_adds_a_tied_mlm_head_that_the_target_phase_drops(tmp_path):
    mixtures = """\
  next+mlm:
    tasks: [bible-next]
    mlm: {text: bible, languages: [en, de, zh], examples: 48, max_length: 32, batch_size: 4}
"""
    pipeline, log = run(tmp_path, "mlm", "next+mlm", mixtures)
    meta = read_meta(pipeline.layout.checkpoint_of(0, "next+mlm"))
    assert meta["heads"]["mlm"] == {"level": "mlm", "outputs": 250002}
    assert "MLM head initialised from scratch" in log
    assert "dropped heads: ['bible-next', 'mlm']" in log
    assert "mlm" in log.split("steps per task: ")[1].split(")")[0]
    zero_shot = ResultsStore.in_run_dir(pipeline.run_dir).rows(phase="zero-shot", intermediate="next+mlm")
    assert {r["language"] for r in zero_shot} == {"en", "de"}


def test_translated_intermediate_trains_on_the_other_languages(tmp_path):
    mixtures = """\
  next-translated:
    tasks: [bible-next]
    translate: {languages: [de, zh], keep_english: false}
"""
    _, log = run(tmp_path, "translated", "next-translated", mixtures)
    assert "bible-next: 32 training examples (de 16, zh 16)" in log


def test_translated_task_without_files_names_the_missing_setting(tmp_path):
    mixtures = """\
  mnli-translated:
    tasks: [mnli]
    translate: {languages: [de]}
"""
    with pytest.raises(XstiltsError, match="set translate.files.mnli"):
        run(tmp_path, "no-files", "mnli-translated", mixtures)


def test_translated_task_reads_the_users_translate_train_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnli").symlink_to(LOCAL / "mnli")
    mixtures = """\
  mnli-de:
    tasks: [mnli]
    translate: {languages: [de], files: {mnli: "mnli-de/train-{lang}.jsonl"}}
"""
    (data / "mnli-de").mkdir()
    (data / "mnli-de" / "train-de.jsonl").write_text(
        '{"sentence1": "Der Hund schläft.", "sentence2": "Ein Tier ruht.", "gold_label": "entailment"}\n'
        '{"sentence1": "Es regnet.", "sentence2": "Die Sonne scheint.", "gold_label": "contradiction"}\n'
    )
    path = tmp_path / "t.yaml"
    path.write_text(
        BASE.format(name="t", out=tmp_path / "runs", data=data, intermediate="mnli-de", mixtures=mixtures)
    )
    console = Console(record=True, width=220)
    Pipeline(load_config(path), console).run()
    assert "mnli: 5 training examples (de 2, en 3)" in console.export_text()


def test_a_head_shared_by_tasks_of_different_shapes_is_an_error(tmp_path):
    mixtures = """\
  clash:
    tasks: [mnli, hellaswag]
    heads: {mnli: shared, hellaswag: shared}
"""
    with pytest.raises(XstiltsError, match="share head 'shared' but need different heads"):
        run(tmp_path, "clash", "clash", mixtures)


def test_mixture_fields_name_only_its_tasks(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        BASE.format(
            name="bad",
            out=tmp_path,
            data=LOCAL,
            intermediate="m",
            mixtures="  m:\n    tasks: [mnli]\n    heads: {qqp: nli}\n",
        )
    )
    with pytest.raises(XstiltsError, match=r"bad.yaml:\d+: field 'mixtures.m.heads'.*\['qqp'\]"):
        load_config(path)
