"""The pipeline on span QA and tagging targets, from files in the original formats under a data directory."""

import json

import pytest
from rich.console import Console

from xstilts.config import load_config
from xstilts.models.checkpoint import read_meta
from xstilts.pipeline.layout import RunLayout
from xstilts.pipeline.runner import Pipeline
from xstilts.pipeline.store import ResultsStore
from xstilts.report.tables import build_tables

QUESTIONS = {
    "en": [
        ("Who wrote the letter?", "The letter was written by Maria in the spring.", "Maria"),
        ("Where is the castle?", "The old castle stands on a hill above Salzburg.", "Salzburg"),
        ("When did the war end?", "The long war finally ended in 1648 after thirty years.", "1648"),
        ("Who won the race?", "After a close finish, Tomas won the race by a second.", "Tomas"),
    ],
    "de": [
        ("Wer schrieb den Brief?", "Den Brief schrieb Maria im Frühling.", "Maria"),
        ("Wo steht die Burg?", "Die alte Burg steht auf einem Hügel über Salzburg.", "Salzburg"),
    ],
}
TAGGED = {
    "en": [
        [("The", "DET"), ("cat", "NOUN"), ("sleeps", "VERB"), (".", "PUNCT")],
        [("Maria", "PROPN"), ("writes", "VERB"), ("long", "ADJ"), ("letters", "NOUN")],
        [("Old", "ADJ"), ("castles", "NOUN"), ("stand", "VERB"), ("still", "ADV")],
    ],
    "de": [
        [("Die", "DET"), ("Katze", "NOUN"), ("schläft", "VERB"), (".", "PUNCT")],
        [("Maria", "PROPN"), ("schreibt", "VERB"), ("Briefe", "NOUN")],
    ],
}


def squad_file(path, lang: str) -> None:
    paragraphs = [
        {
            "context": context,
            "qas": [
                {
                    "id": f"{lang}-{i}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
            ],
        }
        for i, (question, context, answer) in enumerate(QUESTIONS[lang])
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))


def conll_file(path, lang: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n\n".join("\n".join(f"{w}\t{t}" for w, t in sentence) for sentence in TAGGED[lang]) + "\n"
    )


CONFIG = """\
name: span-tag
model: tiny-random-xlmr
output_dir: {out}
data_dir: {data}
intermediate: [none, squad-v1]
targets: [xquad, udpos]
languages: [en, de]
intermediate_training: {{max_steps: 2, batch_size: 4}}
target_training: {{max_steps: 2, batch_size: 4}}
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        squad_file(data / "squad" / name, "en")
    for lang in ("en", "de"):
        squad_file(data / "xquad" / f"xquad.{lang}.json", lang)
        conll_file(data / "udpos" / f"test-{lang}.tsv", lang)
    for split in ("train", "dev"):
        conll_file(data / "udpos" / f"{split}-en.tsv", "en")
    out = tmp_path_factory.mktemp("runs")
    (out / "run.yaml").write_text(CONFIG.format(out=out, data=data))
    cfg = load_config(out / "run.yaml")
    console = Console(record=True, width=200)
    Pipeline(cfg, console).run()
    return cfg, console.export_text()


def test_every_metric_of_span_qa_and_tagging_is_stored(finished_run):
    cfg, log = finished_run
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows()
    for inter in ("none", "squad-v1"):
        for phase, languages in (("target-dev", {"en"}), ("zero-shot", {"en", "de"})):
            for target, metrics in (
                ("xquad", {"squad_f1", "squad_em"}),
                ("udpos", {"pos_f1", "pos_precision", "pos_recall"}),
            ):
                found = {
                    (r["language"], r["metric"])
                    for r in rows
                    if (r["intermediate"], r["target"], r["phase"]) == (inter, target, phase)
                }
                assert found == {(lang, metric) for lang in languages for metric in metrics}
    intermediate = [r for r in rows if r["phase"] == "intermediate-dev"]
    assert [(r["target"], r["metric"]) for r in intermediate] == [("squad-v1", "squad_f1")]
    assert all(0.0 <= r["value"] <= 1.0 for r in rows if r["phase"] != "budget")  # budget rows are counts
    assert "4 windows for 4 questions" in log  # the encoding notes reach the log


def test_heads_are_token_level_in_checkpoints(finished_run):
    cfg, log = finished_run
    layout = RunLayout(cfg)
    squad, udpos = layout.checkpoint_of(0, "squad-v1"), layout.checkpoint_of(0, "none", "udpos")
    assert read_meta(squad)["heads"] == {"squad-v1": {"level": "token", "outputs": 2}}
    assert read_meta(udpos)["heads"] == {"udpos": {"level": "token", "outputs": 17}}
    assert "target xquad after squad-v1: loaded" in log and "dropped heads: ['squad-v1']" in log


def test_report_tables_use_the_headline_metric_only(finished_run):
    cfg, _ = finished_run
    rows = ResultsStore.in_run_dir(cfg.run_dir).rows()
    tables = build_tables(rows)
    f1 = {
        (r["intermediate"], r["target"], r["language"]): r["value"]
        for r in rows
        if r["phase"] == "zero-shot" and r["metric"] in ("squad_f1", "pos_f1")
    }
    assert tables.per_language == pytest.approx(f1)
