"""Config validation: errors name the file, the line and the field."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from xstilts.config import NONE_TASK, load_config
from xstilts.errors import XstiltsError

GOOD = """\
name: unit
model: tiny-random-xlmr
intermediate: [none, bible-next]
targets: [bible-genre, bible-pair, bible-retrieval]
languages: [en, de, zh]
target_training:
  epochs: 1
  batch_size: 8
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads_and_hashes_stably(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.intermediate == [NONE_TASK, "bible-next"]
    assert cfg.target_training.batch_size == 8
    assert cfg.phase_for("bible-genre").epochs == 1
    assert cfg.fingerprint() == load_config(write(tmp_path, GOOD)).fingerprint()
    changed = load_config(write(tmp_path, GOOD.replace("epochs: 1", "epochs: 2")))
    assert changed.fingerprint() != cfg.fingerprint()


def test_logging_and_checkpoint_frequency_do_not_change_the_hash(tmp_path):
    """How often a training reads its loss or saves a checkpoint never changes what it computes."""
    cfg = load_config(write(tmp_path, GOOD))
    watched = GOOD.replace("  epochs: 1\n", "  epochs: 1\n  log_every: 3\n  checkpoint_every: 7\n")
    assert load_config(write(tmp_path, watched)).fingerprint() == cfg.fingerprint()
    override = watched + "target_overrides:\n  bible-genre:\n    log_every: 5\n"
    assert load_config(write(tmp_path, override)).fingerprint() == cfg.fingerprint()
    assert load_config(write(tmp_path, override + "    epochs: 2\n")).fingerprint() != cfg.fingerprint()


def test_bad_field_value_names_file_line_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("batch_size: 8", "batch_size: -3"))
    with pytest.raises(XstiltsError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:8" in message and "target_training.batch_size" in message


def test_unknown_field_is_rejected_with_its_line(tmp_path):
    path = write(tmp_path, GOOD + "learning_rat: 0.1\n")
    with pytest.raises(XstiltsError, match=r"exp.yaml:9: field 'learning_rat'"):
        load_config(path)


def test_unknown_task_lists_valid_names(tmp_path):
    path = write(tmp_path, GOOD.replace("bible-pair,", "bible-pairs,"))
    with pytest.raises(XstiltsError) as err:
        load_config(path)
    message = str(err.value)
    assert "exp.yaml:4: field 'targets'" in message and "'bible-pairs'" in message
    assert "bible-genre" in message and "bible-retrieval" in message


def test_unknown_language_lists_valid_languages(tmp_path):
    path = write(tmp_path, GOOD.replace("[en, de, zh]", "[en, xx]"))
    with pytest.raises(XstiltsError) as err:
        load_config(path)
    assert "exp.yaml:5" in str(err.value) and "'xx'" in str(err.value) and "de" in str(err.value)


def test_intermediate_must_be_an_intermediate_task(tmp_path):
    path = write(tmp_path, GOOD.replace("[none, bible-next]", "[none, bible-pair]"))
    with pytest.raises(XstiltsError, match="not an intermediate task"):
        load_config(path)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  epochs: 1", "  epochs: [1"))
    with pytest.raises(XstiltsError, match=r"exp.yaml:\d+: malformed YAML"):
        load_config(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(XstiltsError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(XstiltsError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_shipped_configs_validate():
    paths = sorted(Path(__file__).parent.parent.glob("configs/**/*.yaml"))
    assert paths, "no configs found"
    names = [load_config(path).name for path in paths]
    assert "demo" in names


def test_target_overrides_replace_only_the_fields_they_set():
    from xstilts.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate(
        {
            "name": "overrides",
            "model": "tiny-random-xlmr",
            "intermediate": ["none"],
            "targets": ["bible-genre", "bible-pair"],
            "target_training": {"learning_rate": 3e-5, "patience": 5, "eval_every": 100},
            "target_overrides": {"bible-pair": {"epochs": 2}},
        }
    )
    pair, genre = cfg.phase_for("bible-pair"), cfg.phase_for("bible-genre")
    assert (pair.epochs, pair.learning_rate, pair.patience, pair.eval_every) == (2, 3e-5, 5, 100)
    assert genre == cfg.target_training


def test_a_mixture_named_after_a_task_holds_only_that_task():
    from xstilts.config import ExperimentConfig

    base = {"name": "m", "model": "tiny-random-xlmr", "targets": ["bible-genre"]}
    alone = {"bible-next": {"tasks": ["bible-next"], "max_length": {"bible-next": 64}}}
    cfg = ExperimentConfig.model_validate(base | {"intermediate": ["bible-next"], "mixtures": alone})
    assert cfg.mixture("bible-next").max_length == {"bible-next": 64}
    mixed = {"bible-next": {"tasks": ["bible-next", "bible-genre"]}}
    with pytest.raises(ValidationError, match="already a task name"):
        ExperimentConfig.model_validate(base | {"intermediate": ["bible-next"], "mixtures": mixed})


STRATEGY = GOOD.replace(
    "target_training:\n",
    "intermediate_training:\n  adversarial:\n    strategy: freelb\n    steps: 3\ntarget_training:\n",
)


def test_a_strategy_setting_out_of_range_names_file_line_and_field(tmp_path):
    path = write(tmp_path, STRATEGY.replace("steps: 3", "steps: 0"))
    with pytest.raises(XstiltsError) as err:
        load_config(path)
    assert f"{path}:9: field 'intermediate_training.adversarial.steps'" in str(err.value)
    assert "greater than or equal to 1" in str(err.value)
    path = write(tmp_path, STRATEGY.replace("steps: 3", "stepsize: 3"))
    with pytest.raises(XstiltsError, match=r":9: field .*adversarial.stepsize.*did you mean 'step_size'"):
        load_config(path)


def test_an_unknown_strategy_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, STRATEGY.replace("strategy: freelb", "strategy: freelbb"))
    with pytest.raises(XstiltsError, match=r":7: .*'freelbb'.*'plain', 'fgm', 'pgd', 'freelb', 'smart'"):
        load_config(path)


def test_a_data_strategy_without_a_lexicon_for_a_language_lists_the_served_ones(tmp_path):
    text = GOOD + "  adversarial: {strategy: code-mixed, embedded_languages: [de, th]}\n"
    with pytest.raises(
        XstiltsError, match=r"field 'target_training': .*no bible lexicon for th; the Bible's"
    ):
        load_config(write(tmp_path, text))


def test_strategies_per_phase_and_per_mixture():
    """A mixture's strategies replace the phases' for it alone; without any, the phase identity (what
    step keys hash) has no strategy field, so runs made before strategies existed keep their keys."""
    from xstilts.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate(
        {
            "name": "x",
            "model": "tiny-random-xlmr",
            "intermediate": ["bible-next", "arm"],
            "mixtures": {"arm": {"tasks": ["bible-next"], "target_adversarial": {"strategy": "fgm"}}},
            "targets": ["bible-genre"],
            "intermediate_training": {"adversarial": {"strategy": "smart"}},
        }
    )
    assert cfg.intermediate_phase("arm").strategy == "smart" == cfg.intermediate_phase("bible-next").strategy
    assert cfg.phase_for("bible-genre", "arm").strategy == "fgm"
    assert cfg.phase_for("bible-genre", "bible-next").strategy == "plain"
    assert "adversarial" not in cfg.target_training.identity()
    assert cfg.mixture("arm").identity() == cfg.mixture("bible-next").identity()


def test_a_data_strategy_on_a_kind_without_words_to_substitute_is_an_error():
    """Every registry kind that trains has fields to substitute; a trained kind without (the MLM
    baseline's) names the kinds the strategy serves."""
    from xstilts.config import CodeMixedConfig, check_kind_served
    from xstilts.tasks.kinds import get_kind

    strategy = CodeMixedConfig(strategy="code-mixed", embedded_languages=["de"])
    check_kind_served(strategy, get_kind("tagging"), "task x")
    with pytest.raises(ValueError, match=r"task x: strategy code-mixed cannot train kind mlm .* tagging"):
        check_kind_served(strategy, get_kind("mlm"), "task x")


# ------------------------------------------------------------------ matched budgets and domain shifts
BUDGET = GOOD.replace("targets: [bible-genre, bible-pair, bible-retrieval]", "targets: [bible-follows]") + (
    "budget: {examples: 64, steps: 4}\n"
)


def test_a_budget_sets_every_intermediate_training_and_its_keys(tmp_path):
    cfg = load_config(write(tmp_path, BUDGET))
    phase = cfg.intermediate_phase("bible-next")
    assert (phase.train_examples, phase.max_steps) == (64, 4)
    assert cfg.phase_for("bible-follows").max_steps is None  # targets are not budgeted
    other = load_config(write(tmp_path, BUDGET.replace("steps: 4", "steps: 5")))
    assert other.fingerprint() != cfg.fingerprint()
    # a config without the new fields keeps the fingerprint it had before they existed
    plain = load_config(write(tmp_path, GOOD))
    assert "budget" not in plain.model_dump(exclude_defaults=True)
    assert plain.fingerprint() == load_config(write(tmp_path, GOOD + "domain_shifts: []\n")).fingerprint()


@pytest.mark.parametrize("field", ["train_examples: 10", "max_steps: 3", "patience: 2"])
def test_a_budget_beside_the_fields_it_fixes_is_an_error_with_the_line(tmp_path, field):
    path = write(tmp_path, BUDGET + f"intermediate_training:\n  {field}\n")
    with pytest.raises(XstiltsError, match=rf"exp.yaml:\d+: .*budget.*must not set {field.split(':')[0]}"):
        load_config(path)


def test_domain_shifts_are_checked_against_the_registry_and_the_targets(tmp_path):
    with pytest.raises(XstiltsError, match="unknown domain shift 'bible-genres'.*bible-law-history-to"):
        load_config(write(tmp_path, BUDGET + "domain_shifts: [bible-genres]\n"))
    with pytest.raises(XstiltsError, match="trains target 'xquad': add it to `targets`"):
        load_config(write(tmp_path, BUDGET + "domain_shifts: [squad-xquad-to-mlqa]\n"))
    cfg = load_config(write(tmp_path, BUDGET + "domain_shifts: [bible-law-history-to-gospels-epistles]\n"))
    assert cfg.train_domains("bible-follows") == ("law", "history")


def test_the_suite_picks_the_default_languages_of_a_target(tmp_path):
    text = GOOD.replace("languages: [en, de, zh]\n", "").replace(
        "[bible-genre, bible-pair, bible-retrieval]", "[udpos]"
    )
    xtreme = load_config(write(tmp_path, text))
    xtreme_r = load_config(write(tmp_path, text + "suite: xtreme-r\n"))
    assert "pl" not in xtreme.target_languages("udpos") and len(xtreme.target_languages("udpos")) == 33
    assert xtreme_r.target_languages("udpos")[-5:] == ["lt", "pl", "uk", "wo", "ro"]
    assert xtreme.fingerprint() != xtreme_r.fingerprint()


def test_english_share_belongs_to_draw_both(tmp_path):
    mixture = (
        "mixtures:\n  multi:\n    tasks: [bible-next]\n"
        "    translate: {languages: [de], draw: multilingual, english_share: 0.3}\n"
    )
    text = BUDGET.replace("intermediate: [none, bible-next]", "intermediate: [multi]") + mixture
    with pytest.raises(XstiltsError, match=r"exp.yaml:\d+: .*english_share is the share of English examples"):
        load_config(write(tmp_path, text))
    assert (
        load_config(write(tmp_path, text.replace("multilingual", "both"))).mixture("multi").translate.draw
        == "both"
    )
