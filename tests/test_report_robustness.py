"""The robustness section of `xstilts report`, on a run directory written by hand: a real results store with
attack, random-baseline and alignment-stability rows, a config.json naming the current step keys, and
adversarial examples saved as `xstilts attack` saves them."""

import json
import math
import re
from pathlib import Path

from rich.console import Console

from xstilts.pipeline.store import ResultRow, ResultsStore
from xstilts.report import report_run
from xstilts.report.robustness import build_robustness_tables, marked_field, stability_curves
from xstilts.robustness.records import ATTACK, RANDOM, STABILITY, AttackRecord, examples_file, phase

ATTACK_NAME = "code-mixing"
TARGET = "bible-genre"
INTERMEDIATES = ("none", "bible-next")
SEEDS = (0, 1)
LANGUAGES = ("de", "zh")
T_975_1 = math.tan(math.pi * (0.975 - 0.5))  # Student t quantile, 1 degree of freedom (a Cauchy): 12.706

# (kind, intermediate, language, metric) -> (seed 0, seed 1); every other attack metric is 0.9 / 0.9
VALUES = {
    (ATTACK, "none", "de", "clean_accuracy"): (0.80, 0.90),
    (ATTACK, "none", "de", "accuracy_under_attack"): (0.40, 0.50),
    (ATTACK, "none", "zh", "accuracy_under_attack"): (0.20, 0.30),
    (ATTACK, "bible-next", "de", "accuracy_under_attack"): (0.60, 0.64),
    (ATTACK, "bible-next", "zh", "accuracy_under_attack"): (0.30, 0.50),
    (RANDOM, "none", "de", "accuracy_under_attack"): (0.70, 0.74),
    (RANDOM, "none", "zh", "accuracy_under_attack"): (0.60, 0.60),
    (ATTACK, "none", "de", "attack_success_rate"): (0.50, 0.44),
    (RANDOM, "none", "de", "attack_success_rate"): (0.125, 0.075),
}
METRICS = (
    "clean_accuracy",
    "accuracy_under_attack",
    "attack_success_rate",
    "average_queries",
    "words_perturbed",
    "examples",
    "skipped",
)

ORIGINAL = 'Tom said "<b>" & ate the big & cheese. <end>'
EDITS = [  # out of order on purpose: the report applies them by position, as apply_edits does
    {
        "field": "premise",
        "start": 5,
        "end": 7,
        "original": "big & cheese",
        "text": "gros <fromage>",
        "language": "fr",
    },
    {"field": "premise", "start": 1, "end": 2, "original": "said", "text": "sagte", "language": "de"},
]
PERTURBED = 'Tom sagte "<b>" & ate the gros <fromage>. <end>'


def attack_key(intermediate: str, seed: int) -> str:
    return f"attack-{intermediate}-{seed}"


def row(key: str, intermediate: str, seed: int, phase_: str, language: str, metric: str, value: float):
    return ResultRow(
        run_id="hand",
        config_hash=key,
        model="tiny-random-xlmr",
        intermediate=intermediate,
        target=TARGET,
        phase=phase_,
        language=language,
        metric=metric,
        value=value,
        seed=seed,
    )


def stability_value(measure: str, intermediate: str, layer: int, seed: int) -> float:
    if measure == "cosine":
        return 0.9 - 0.1 * layer - 0.05 * seed + (0.02 if intermediate != "none" else 0.0)
    flip = 0.5 + 0.1 * layer + 0.02 * seed
    return {"flip_auc": flip, "flip_auc_low": flip - 0.05, "flip_auc_high": flip + 0.05}[measure]


def records() -> list[AttackRecord]:
    common = dict(language="de", label=1, prediction_before=1, queries=17, words=9)
    return [
        AttackRecord(
            id="ex<1>",
            prediction_after=0,
            outcome="successful",
            words_changed=3,
            languages_mixed=["de", "fr"],
            original={"premise": ORIGINAL, "hypothesis": "They ate."},
            perturbed={"premise": PERTURBED, "hypothesis": "They ate."},
            edits=EDITS,
            **common,
        ),
        AttackRecord(
            id="ex-failed",
            prediction_after=1,
            outcome="failed",
            words_changed=1,
            languages_mixed=["fr"],
            original={"premise": "Nothing changed here.", "hypothesis": "No."},
            perturbed={"premise": "Nothing changed here.", "hypothesis": "No."},
            edits=[],
            **common,
        ),
    ]


def write_robustness_run(run_dir: Path, *, attacks: bool = True) -> Path:
    """A run directory: zero-shot rows, and (with `attacks`) one attack's rows, stability and examples."""
    store = ResultsStore.in_run_dir(run_dir)
    target_keys, keys = [], []
    for inter in INTERMEDIATES:
        for seed in SEEDS:
            key = f"target-{inter}-{seed}"
            target_keys.append(key)
            zero = [row(key, inter, seed, "zero-shot", lang, "accuracy", 0.7) for lang in ("en", *LANGUAGES)]
            store.commit_step(key, "target", zero)
            if not attacks:
                continue
            key = attack_key(inter, seed)
            keys.append(key)
            rows = []
            for kind in (ATTACK, RANDOM):
                for lang in LANGUAGES:
                    for metric in METRICS:
                        value = VALUES.get((kind, inter, lang, metric), (0.9, 0.9))[seed]
                        rows.append(row(key, inter, seed, phase(kind, ATTACK_NAME), lang, metric, value))
            stages = ("pretrained", "target") if inter == "none" else ("pretrained", "intermediate", "target")
            for stage in stages:
                for layer in range(3):
                    for measure in ("cosine", "flip_auc", "flip_auc_low", "flip_auc_high"):
                        value = stability_value(measure, inter, layer, seed)
                        metric = f"{stage}:{measure}@{layer}"
                        rows.append(
                            row(key, inter, seed, phase(STABILITY, ATTACK_NAME), "all", metric, value)
                        )
                rows.append(
                    row(key, inter, seed, phase(STABILITY, ATTACK_NAME), "all", f"{stage}:examples", 50)
                )
                rows.append(
                    row(key, inter, seed, phase(STABILITY, ATTACK_NAME), "all", f"{stage}:flipped", 9)
                )
            store.commit_step(key, f"attack:{ATTACK_NAME}", rows)
    if attacks:  # an attack of earlier settings: kept in the store, not in the tables
        old = row("attack-old", "none", 0, phase(ATTACK, ATTACK_NAME), "de", "accuracy_under_attack", 0.123)
        store.commit_step("attack-old", f"attack:{ATTACK_NAME}", [old])
        path = examples_file(run_dir, ATTACK_NAME, attack_key("none", 0), "de")
        path.parent.mkdir(parents=True)
        path.write_text("".join(record.to_json() + "\n" for record in records()), encoding="utf-8")
    config = {"config_hash": "fingerprint", "step_keys": target_keys}
    if attacks:
        config["attack_step_keys"] = dict(zip(keys, target_keys, strict=True))  # attack -> its checkpoint
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


def spread(first: float, second: float) -> str:
    """Two seeds by hand: the mean, and the t-interval's half-width t * sd / sqrt(2) = t * |a - b| / 2."""
    return f"{100 * (first + second) / 2:.1f} ±{100 * T_975_1 * abs(first - second) / 2:.1f}"


# language, intermediate, clean acc., acc. under attack, acc. under random, success rate attack / random
EXPECTED = [
    [
        "de",
        "none",
        spread(0.8, 0.9),
        spread(0.4, 0.5),
        spread(0.7, 0.74),
        spread(0.5, 0.44),
        spread(0.125, 0.075),
    ],
    ["de", "bible-next", "90.0 ±0.0", spread(0.6, 0.64), "90.0 ±0.0", "90.0 ±0.0", "90.0 ±0.0"],
    ["zh", "none", "90.0 ±0.0", spread(0.2, 0.3), "60.0 ±0.0", "90.0 ±0.0", "90.0 ±0.0"],
    # the mean over languages: of each seed's mean (seed 0: (0.4 + 0.2) / 2, seed 1: (0.5 + 0.3) / 2)
    [
        "mean",
        "none",
        spread(0.85, 0.9),
        spread(0.3, 0.4),
        spread(0.65, 0.67),
        spread(0.7, 0.67),
        spread(0.5125, 0.4875),
    ],
]


def report(run_dir: Path) -> tuple[str, str]:
    console = Console(record=True, width=100)
    page = report_run(run_dir, console).read_text(encoding="utf-8")
    return console.export_text(), page


def test_known_values_by_hand():
    assert spread(0.4, 0.5) == "45.0 ±63.5" and spread(0.6, 0.6) == "60.0 ±0.0"


def test_tables_show_the_attack_beside_its_random_baseline(tmp_path):
    text, page = report(write_robustness_run(tmp_path))
    assert "attack vs random" in text and "<h2>Robustness: code-mixing</h2>" in page
    lines = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    assert all(len(line) <= 100 for line in text.splitlines())
    for expected in EXPECTED:
        cells = "".join(f"<td>{cell}</td>" for cell in expected)
        assert f"<tr>{cells}</tr>" in page, expected
        assert expected in lines or ["", *expected[1:]] in lines, expected  # the language is named once
    assert "12.3" not in page.split("Earlier settings")[0] and "12.3" not in text  # earlier settings' row
    assert "attack-old" in page.split("<h2>Earlier settings</h2>")[1]


def test_stability_curves_are_means_over_seeds_with_the_flip_auc_band(tmp_path):
    write_robustness_run(tmp_path)
    tables = build_robustness_tables(ResultsStore.in_run_dir(tmp_path).rows())
    curves = stability_curves(tables, ATTACK_NAME, TARGET)
    curve, low, high = curves["flip_auc", "target", "bible-next"]
    assert len(curve) == 3 and all(math.isclose(a, 0.51 + 0.1 * layer) for layer, a in enumerate(curve))
    assert all(
        math.isclose(h - c, 0.05) and math.isclose(c - lo, 0.05)
        for c, lo, h in zip(curve, low, high, strict=True)
    )
    cosine, no_low, no_high = curves["cosine", "pretrained", "none"]
    assert all(math.isclose(c, 0.875 - 0.1 * layer) for layer, c in enumerate(cosine))
    assert no_low is None and no_high is None
    direct = curves["cosine", "target", "bible-next"][0]
    assert all(math.isclose(a, 0.895 - 0.1 * layer) for layer, a in enumerate(direct))
    assert ("flip_auc", "intermediate", "none") not in curves and (
        "flip_auc",
        "intermediate",
        "bible-next",
    ) in curves
    page = report_run(tmp_path, Console(record=True, width=100)).read_text(encoding="utf-8")
    assert page.count('alignment stability" src="data:image/png;base64,') == 1


def test_examples_mark_exactly_the_changed_words_and_escape_html(tmp_path):
    _, page = report(write_robustness_run(tmp_path))
    examples = page.split("<h3>Successful code-mixing attacks (changed words marked)</h3>")[1]
    examples = examples.split("<h2>Earlier settings</h2>")[0]
    assert examples.count('<div class="example">') == 1 and "ex-failed" not in examples  # successful only
    original = (
        "Tom <mark>said</mark> &quot;&lt;b&gt;&quot; &amp; ate the <mark>big &amp; cheese</mark>. &lt;end&gt;"
    )
    perturbed = (
        'Tom <mark title="de">sagte</mark> &quot;&lt;b&gt;&quot; &amp; ate the '
        '<mark title="fr">gros &lt;fromage&gt;</mark>. &lt;end&gt;'
    )
    assert f"<tr><th>premise</th><td>{original}</td><td>{perturbed}</td></tr>" in examples
    assert "<tr><th>hypothesis</th><td>They ate.</td><td>They ate.</td></tr>" in examples
    assert examples.count("<mark") == 4 and all(tag not in examples for tag in ("<b>", "<fromage>", "<end>"))
    header = re.search(r'<div class="example"><p>(.*?)</p>', examples)[1]
    assert "de #ex&lt;1&gt; (none → bible-genre, seed 0)" in header and "prediction 1 → 0" in header
    assert "label 1" in header and "languages mixed in: de, fr" in header


def test_a_saved_text_the_edits_do_not_explain_is_shown_unmarked(tmp_path):
    run_dir = write_robustness_run(tmp_path)
    path = examples_file(run_dir, ATTACK_NAME, attack_key("none", 0), "de")
    changed = records()[0]
    changed.perturbed = {"premise": "Something else <i>", "hypothesis": "They ate."}
    path.write_text(changed.to_json() + "\n", encoding="utf-8")
    _, page = report(run_dir)
    assert "<td>Something else &lt;i&gt; <em>(edits do not reproduce this text)</em></td>" in page
    original, _, plain = marked_field(ORIGINAL, EDITS)
    assert plain == PERTURBED and original.count("<mark>") == 2


def test_a_run_without_attacks_has_no_robustness_section(tmp_path):
    text, page = report(write_robustness_run(tmp_path, attacks=False))
    assert "Robustness" not in page and "attack vs random" not in text and "<mark" not in page
    assert "bible-genre" in text  # the zero-shot tables are there as before
