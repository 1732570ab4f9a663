"""Where attack results live: results-store phases and the adversarial examples as JSONL.

Store rows (one step per attacked checkpoint, attack and settings; `config_hash` = that step's key):
- phase `robustness:<attack>`: the attack's metrics (`robustness.metrics.attack_metrics`) per language;
- phase `robustness-random:<attack>`: the same metrics of its random baseline;
- phase `robustness-alignment:<attack>`: alignment stability (`robustness.stability`), metric
  `<stage>:<measure>@<layer>` and `<stage>:examples` / `<stage>:flipped`, stage = pretrained |
  intermediate | target (`stability.stability_rows`).
Columns `intermediate`, `target` (the task) and `seed` say which checkpoint was attacked.

Adversarial examples: `<run dir>/attacks/<attack>/<step key>/<language>.jsonl`, one `AttackRecord` per
line, in the order of the test examples; random-baseline records in `<language>.random.jsonl`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ATTACK = "robustness"
RANDOM = "robustness-random"
STABILITY = "robustness-alignment"
KINDS = (ATTACK, RANDOM, STABILITY)
ATTACKS_DIR = "attacks"


def phase(kind: str, attack: str) -> str:
    """The store phase of an attack's rows: `robustness:code-mixing`, ..."""
    return f"{kind}:{attack}"


def parse_phase(value: str) -> tuple[str, str] | None:
    """(kind, attack) of a robustness phase, else None."""
    kind, _, attack = value.partition(":")
    return (kind, attack) if kind in KINDS and attack else None


@dataclass
class AttackRecord:
    """One attacked example, as saved: before and after, what changed, and what it cost."""

    id: str
    language: str
    label: int
    prediction_before: int
    prediction_after: int
    outcome: str  # successful | failed | skipped (TextAttack's words)
    queries: int
    words: int  # words of the attacked fields
    words_changed: int
    languages_mixed: list[str]
    original: dict[str, str]  # attacked field -> clean text
    perturbed: dict[str, str]  # attacked field -> adversarial text
    edits: list[dict] = field(default_factory=list)  # {field, start, end, original, text, language}

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def examples_file(run_dir: Path, attack: str, step_key: str, language: str, *, random: bool = False) -> Path:
    suffix = ".random.jsonl" if random else ".jsonl"
    return Path(run_dir) / ATTACKS_DIR / attack / step_key / f"{language}{suffix}"


def read_records(path: Path) -> list[AttackRecord]:
    with open(path, encoding="utf-8") as handle:
        return [AttackRecord(**json.loads(line)) for line in handle if line.strip()]
