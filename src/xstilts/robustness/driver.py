"""`xstilts attack CONFIG_OR_RUN_DIR`: every attack of the config on every target checkpoint of a run.

Hops: the run (`analysis.driver.open_run`: a YAML is trained first, resuming) -> its target checkpoints of
attackable kinds, every seed and intermediate (`attack_plan`) -> per checkpoint one `Victim` -> per attack
and language: the test examples, the transformation's candidates (once, shared by the attack and its
random baseline), `Attack.run` -> records as JSONL and metrics as rows -> alignment stability of the
pooled records (`robustness.stability`) -> one results-store step per (checkpoint, attack), so a rerun
skips finished ones -> the per-language tables with intervals over seeds (`report.robustness`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from xstilts.analysis.driver import Run, open_run
from xstilts.config import NONE_TASK, AttackConfig, AttackSpec
from xstilts.errors import XstiltsError
from xstilts.io import atomic_file
from xstilts.models.checkpoint import build_model, checkpoint_problem
from xstilts.pipeline.layout import ATTACK_STEP_KEYS
from xstilts.pipeline.runner import DATA_SEED  # attacked examples are drawn as the test examples are
from xstilts.pipeline.store import ResultRow, run_row
from xstilts.robustness import records as rec
from xstilts.robustness.attack import UNATTACKABLE, Attack, as_result
from xstilts.robustness.constraints import Constraints, SentenceSimilarity
from xstilts.robustness.metrics import attack_metrics
from xstilts.robustness.search import Search
from xstilts.robustness.stability import attacked_field
from xstilts.robustness.victim import Victim, check_attackable
from xstilts.tasks.kinds import get_kind
from xstilts.tasks.registry import get_task
from xstilts.tasks.sources import load_examples
from xstilts.tasks.spec import TaskSpec

STAGES = ("pretrained", "intermediate", "target")


@dataclass(frozen=True)
class Victimised:
    """One target checkpoint to attack."""

    seed: int
    intermediate: str
    target: str
    source: Path
    key: str  # the key of the pipeline step that made it

    @property
    def label(self) -> str:
        return f"{self.target} <- {self.intermediate} (seed {self.seed})"


def settings_for(run: Run, **overrides) -> AttackConfig:
    """The run's `attack:` section with the command line's overrides (None = keep). Languages given on the
    command line are the languages of every attack, also of those that name their own."""
    data = run.cfg.attack.model_dump()
    data.update({key: value for key, value in overrides.items() if value is not None})
    if overrides.get("languages") is not None:
        for attack in data["attacks"].values():
            attack["languages"] = None
    try:
        return AttackConfig.model_validate(data)
    except ValueError as err:
        raise XstiltsError(f"invalid attack settings: {err}") from None


def attacked_targets(run: Run, settings: AttackConfig) -> list[str]:
    """The targets to attack: the named ones (each must be attackable) or every attackable target."""
    if settings.targets is not None:
        unknown = sorted(set(settings.targets) - set(run.cfg.targets))
        if unknown:
            raise XstiltsError(f"attack.targets {unknown} are not targets of this run: {run.cfg.targets}")
        for name in settings.targets:
            check_attackable(get_task(name))
        return list(settings.targets)
    found = [t for t in run.cfg.targets if get_kind(get_task(t).kind).attack_fields]
    if not found:
        check_attackable(get_task(run.cfg.targets[0]))  # says which kinds an attack can serve
    return found


def attack_plan(run: Run, targets: Sequence[str]) -> list[Victimised]:
    """Every (seed, intermediate, target) checkpoint; an error naming those to train when any is missing."""
    if not run.cfg.save_target_checkpoints:
        raise XstiltsError(
            "this run keeps no target checkpoints (save_target_checkpoints: false): set it to true and rerun "
            "`xstilts run` to train them, then attack"
        )
    layout, found, missing = run.layout, [], []
    for seed in run.cfg.seeds:
        for intermediate in run.cfg.intermediate:
            for target in targets:
                step = layout.target(seed, intermediate, target)
                folder = layout.checkpoint_dir(step)
                if not folder.exists():
                    missing.append(f"{target} after {intermediate} (seed {seed})")
                    continue
                problem = checkpoint_problem(folder)
                if problem is not None:
                    raise XstiltsError(f"checkpoint {folder} {problem}; rerun `xstilts run` to redo it")
                found.append(Victimised(seed, intermediate, target, folder, step.key))
    if missing:
        raise XstiltsError(
            f"{run.run_dir} has no target checkpoint for: {'; '.join(missing)}. Train them with "
            f"`xstilts run` on this run's config (or pass the experiment YAML to `xstilts attack`, which "
            "trains what is missing first)"
        )
    return found


def languages_for(run: Run, settings: AttackConfig, spec: TaskSpec, attack: AttackSpec) -> list[str]:
    languages = attack.languages or settings.languages or run.cfg.target_languages(spec.name)
    unknown = [lang for lang in languages if lang not in spec.languages]
    if unknown:
        raise XstiltsError(f"{spec.name} has no {unknown}; its languages: {', '.join(spec.languages)}")
    return list(languages)


def step_key(victim: Victimised, name: str, attack: AttackSpec, settings: AttackConfig, languages) -> str:
    """What decides an attack's results: the checkpoint, the attack and the example settings."""
    payload = {
        "checkpoint": victim.key,
        "attack": name,
        "spec": attack.model_dump(mode="json"),
        "languages": list(languages),
        "examples": settings.examples,
        "fields": settings.fields,
        "pair_language": settings.pair_language,
        "seed": settings.seed,
        "stability": settings.stability,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


class Examples:
    """Test examples of one target, per language, drawn as the pipeline draws them; kept for reuse."""

    def __init__(self, run: Run, spec: TaskSpec, limit: int):
        self.run, self.spec, self.limit = run, spec, limit
        self._found: dict[str, list[dict]] = {}

    def __call__(self, lang: str) -> list[dict]:
        if lang not in self._found:
            where = {k: v for k in ("data_dir", "hub_mirror") if (v := getattr(self.run.cfg, k, None))}
            self._found[lang] = load_examples(
                self.spec, "test", lang, seed=DATA_SEED, limit=self.limit, **where
            )
        return self._found[lang]

    def parallel(self, ids: Sequence[str], lang: str) -> list[dict]:
        """The examples with these ids in `lang`, under the ids asked for (the test sets of XNLI and the
        Bible are parallel: the same example in every language; see `parallel_key`)."""
        by_key = {parallel_key(str(e["id"]), self.spec): e for e in self(lang)}
        keys = [parallel_key(str(i), self.spec) for i in ids]
        missing = [i for i, key in zip(ids, keys, strict=True) if key not in by_key]
        if missing:
            raise XstiltsError(
                f"{self.spec.name} {lang} lacks the parallel versions of {len(missing)} examples "
                f"(e.g. {missing[0]}): phrase mixing and the generalised pair setting need parallel test sets"
            )
        return [{**by_key[key], "id": i} for i, key in zip(ids, keys, strict=True)]


def parallel_key(example_id: str, spec: TaskSpec) -> str:
    """An example's id without its language: ids made from a file position ("xnli-test-de-17", see
    `tasks.sources`) name the language, ids of the Bible tasks do not ("40:3:2")."""
    for code in spec.languages:
        prefix = f"{spec.name}-test-{code}-"
        if example_id.startswith(prefix):
            return f"{spec.name}-test-" + example_id[len(prefix) :]
    return example_id


def with_pair_language(
    examples: list[dict], fields, lang: str, pair_language: str | None, data
) -> list[dict]:
    """The generalised setting: the fields not attacked are taken in `pair_language`."""
    if pair_language is None or pair_language == lang:
        return examples
    others = data.parallel([e["id"] for e in examples], pair_language)
    kept = [f for f in get_kind(data.spec.kind).attack_fields if f not in fields]
    if not kept:
        raise XstiltsError("pair_language needs a field left unperturbed: set attack.fields to one field")
    return [{**e, **{f: other[f] for f in kept}} for e, other in zip(examples, others, strict=True)]


def victim_rows(run: Run, victim: Victimised, key: str, phase: str, lang: str, values) -> list[ResultRow]:
    """Store rows of one attacked checkpoint from (metric, value) pairs; an undefined (NaN) value, e.g. no
    successful attack to average over, gets no row."""
    return [
        run_row(
            run.cfg,
            key,
            value=value,
            intermediate=victim.intermediate,
            target=victim.target,
            phase=phase,
            language=lang,
            metric=metric,
            seed=victim.seed,
        )
        for metric, value in values
        if not math.isnan(value)
    ]


def _metric_rows(run: Run, victim: Victimised, key: str, phase: str, lang: str, records) -> list[ResultRow]:
    results = [r for r in map(as_result, records) if r is not None]
    values = attack_metrics(results)
    values["unattackable"] = float(len(records) - len(results))
    return victim_rows(run, victim, key, phase, lang, values.items())


def _write_records(path: Path, records) -> None:
    with atomic_file(path) as handle:
        for record in records:
            handle.write(record.to_json() + "\n")


def note_attack_keys(run: Run, keys: dict[str, str]) -> None:
    """config.json maps the attack steps of the current settings to the checkpoints they attacked, so the
    report shows their rows (and stops when a retrained checkpoint replaces the attacked one)."""
    path = run.layout.config_file
    data = json.loads(path.read_text())
    if data.get(ATTACK_STEP_KEYS) != keys:
        data[ATTACK_STEP_KEYS] = keys
        with atomic_file(path) as handle:
            json.dump(data, handle, indent=2)


class AttackRunner:
    def __init__(self, run: Run, settings: AttackConfig, console: Console):
        self.run, self.settings, self.console = run, settings, console
        self.store = run.layout.store
        self._similarity: dict[str, SentenceSimilarity] = {}
        self._transformations: dict[tuple, object] = {}
        self._candidates: dict[tuple, list] = {}
        self._encoders: dict[str, tuple] = {}

    def similarity(self, attack: AttackSpec) -> SentenceSimilarity | None:
        if attack.min_similarity is None:
            return None
        source = attack.similarity_encoder or self.run.cfg.model
        if source not in self._similarity:
            self._similarity[source] = SentenceSimilarity(source, batch_size=self.settings.batch_size)
        return self._similarity[source]

    def transformation(self, name, attack: AttackSpec, victim: Victimised, model, languages, data):
        """The attack's transformation: built once, or per checkpoint where it reads the checkpoint (mlm)."""
        from xstilts.robustness.transformations import build_transformation

        key = (name, victim.target)
        if key not in self._transformations or self._transformations[key].per_checkpoint:
            self._transformations[key] = build_transformation(
                attack,
                embedded_languages=attack.embedded_languages or languages,  # default: the other ones
                victim_source=victim.source,
                parallel=data.parallel,
                device=str(next(model.parameters()).device),
                batch_size=self.settings.batch_size,
            )
        return self._transformations[key]

    def candidates(self, name, transformation, victim: Victimised, examples, lang, fields):
        """Candidates proposed once per attack, target and language and shared by every checkpoint (so
        all face the same candidates, even where the word aligner is unseeded), unless they come from the
        checkpoint itself."""
        key = (name, victim.target, lang, victim.source if transformation.per_checkpoint else None)
        if key not in self._candidates:
            self._candidates = {k: v for k, v in self._candidates.items() if k[3] is None}  # keep shared
            self._candidates[key] = transformation.candidates(examples, lang, fields)
        return self._candidates[key]

    def encoder(self, source, device=None):
        """An encoder of the attacked lineage, loaded once for all attacks of a checkpoint (the
        pretrained model once for the whole run)."""
        from xstilts.analysis.representations import load_source_encoder

        key = str(source)
        if key not in self._encoders:
            if len(self._encoders) >= 4:  # the pretrained model and one checkpoint's lineage
                pretrained = str(self.run.cfg.model)
                self._encoders = {k: v for k, v in self._encoders.items() if k == pretrained}
            self._encoders[key] = load_source_encoder(source, device)
        return self._encoders[key]

    def encoders(self, victim: Victimised) -> dict[str, str]:
        """The three states of the attacked model's lineage whose alignment stability is measured."""
        found = {"pretrained": self.run.cfg.model}
        if victim.intermediate != NONE_TASK:
            found["intermediate"] = str(self.run.layout.checkpoint_of(victim.seed, victim.intermediate))
        found["target"] = str(victim.source)
        return found

    def steps(self, victim: Victimised, spec: TaskSpec) -> list[tuple[str, AttackSpec, list[str], str, str]]:
        """(attack name, attack, languages, step key, step name) of every attack on one checkpoint."""
        found = []
        for name, attack in self.settings.attacks.items():
            languages = languages_for(self.run, self.settings, spec, attack)
            key = step_key(victim, name, attack, self.settings, languages)
            step = f"attack/{name}/seed{victim.seed}/{victim.intermediate}/{victim.target}"
            found.append((name, attack, languages, key, step))
        return found

    def pending(self, victim: Victimised, spec: TaskSpec) -> list[tuple]:
        """The steps of `steps` not in the store yet (the others are said to be resumed)."""
        todo = []
        for step in self.steps(victim, spec):
            if self.store.is_done(step[3], step[4]):
                self.console.print(f"  {step[0]} on {victim.label}: already done, resuming")
            else:
                todo.append(step)
        return todo

    def attack_checkpoint(
        self, victim: Victimised, model, tokenizer, spec: TaskSpec, data: Examples, todo
    ) -> None:
        """The attacks `todo` (from `pending`) on one checkpoint, each stored as one step."""
        settings = self.settings
        fields = tuple(settings.fields or get_kind(spec.kind).attack_fields)
        unknown = [f for f in fields if f not in get_kind(spec.kind).attack_fields]
        if unknown:
            raise XstiltsError(
                f"attack.fields {unknown}: {spec.name} can be attacked on {get_kind(spec.kind).attack_fields}"
            )
        target = Victim(model, tokenizer, spec, batch_size=settings.batch_size)
        for name, attack, languages, key, step in todo:
            transformation = self.transformation(name, attack, victim, model, languages, data)
            constraints = Constraints(
                attack.max_words_fraction,
                attack.skip_stop_words,
                attack.min_similarity,
                self.similarity(attack),
            )
            search = Search(
                attack.search, attack.importance, attack.beam_width, attack.query_budget, settings.seed
            )
            baseline = Search("random", query_budget=attack.query_budget, seed=settings.seed)
            rows, pooled, english = [], [], []
            for lang in languages:
                examples = with_pair_language(data(lang), fields, lang, settings.pair_language, data)
                proposed = self.candidates(name, transformation, victim, examples, lang, fields)
                found = Attack(transformation, constraints, search).run(
                    target, examples, lang, fields, proposed
                )
                random = Attack(transformation, constraints, baseline).run(
                    target, examples, lang, fields, proposed
                )
                _write_records(rec.examples_file(self.run.run_dir, name, key, lang), found)
                _write_records(rec.examples_file(self.run.run_dir, name, key, lang, random=True), random)
                rows += _metric_rows(self.run, victim, key, rec.phase(rec.ATTACK, name), lang, found)
                rows += _metric_rows(self.run, victim, key, rec.phase(rec.RANDOM, name), lang, random)
                if lang != "en":
                    measured = [r for r in found if r.outcome != UNATTACKABLE]
                    pooled += measured
                    sources = data.parallel([r.id for r in measured], "en")
                    english += [e[attacked_field(r)] for e, r in zip(sources, measured, strict=True)]
                self._print_language(name, victim, lang, rows)
            if settings.stability and pooled:
                rows += self.stability_rows(victim, key, name, pooled, english)
            self.store.commit_step(key, step, rows)

    def stability_rows(self, victim: Victimised, key: str, name: str, pooled, english) -> list[ResultRow]:
        from xstilts.robustness.stability import measure_stability, stability_rows

        results = measure_stability(
            pooled,
            english,
            self.encoders(victim),
            batch_size=self.settings.batch_size,
            n_boot=self.settings.n_boot,
            seed=self.settings.seed,
            encoder_loader=self.encoder,
        )
        phase = rec.phase(rec.STABILITY, name)
        return victim_rows(self.run, victim, key, phase, "all", stability_rows(results))

    def _print_language(self, name: str, victim: Victimised, lang: str, rows: list[ResultRow]) -> None:
        def value(kind: str, metric: str, scale: float = 100.0) -> str:
            phase = rec.phase(kind, name)
            found = [r.value for r in rows if (r.phase, r.language, r.metric) == (phase, lang, metric)]
            return f"{scale * found[0]:.1f}" if found else "-"  # undefined metrics have no row

        self.console.print(
            f"  {name} {victim.label} {lang}: clean {value(rec.ATTACK, 'clean_accuracy')}, "
            f"under attack {value(rec.ATTACK, 'accuracy_under_attack')} "
            f"(random {value(rec.RANDOM, 'accuracy_under_attack')}), "
            f"success {value(rec.ATTACK, 'attack_success_rate')}%, "
            f"{value(rec.ATTACK, 'average_queries', 1.0)} queries"
        )


def attack_run(run_or_config: str | Path, console: Console | None = None, **overrides) -> Run:
    """Attack every target checkpoint of the run not yet attacked with these settings; returns the run."""
    console = console or Console()
    run = open_run(run_or_config, console)
    settings = settings_for(run, **overrides)
    targets = attacked_targets(run, settings)
    plan = attack_plan(run, targets)
    console.print(
        f"[bold]xstilts attack[/bold] {run.run_dir}: {len(plan)} checkpoints x {len(settings.attacks)} "
        f"attacks ({', '.join(settings.attacks)}), {settings.examples} examples per language"
    )
    runner, keys, data = AttackRunner(run, settings, console), {}, {}
    for victim in plan:
        spec = get_task(victim.target)
        keys.update({step[3]: victim.key for step in runner.steps(victim, spec)})
        todo = runner.pending(victim, spec)
        if not todo:
            continue  # nothing to attack: no model loaded
        data.setdefault(victim.target, Examples(run, spec, settings.examples))
        heads = {spec.head_name: get_kind(spec.kind).head(spec)}
        model, tokenizer, _ = build_model(victim.source, heads, pooling=run.cfg.head_pooling)
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        runner.attack_checkpoint(victim, model, tokenizer, spec, data[victim.target], todo)
        del model
        gc.collect()
    note_attack_keys(run, keys)
    return run
