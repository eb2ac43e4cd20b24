"""summary.json: what one run reached, against its goal. `RunSummary` is its only writer and reader.

Every run directory gets one, whatever happened: `completed` and `diverged` runs (with metrics
and a diagnosis), `failed` and `interrupted` runs (with the error, and for an interrupt the
command that resumes it), `refused` sweep trials (a config mistake found before training), and
`pruned` search trials (stopped by the search's pruner: the epochs they trained, nothing after).
A repeated run (`search.repeats`) adds its seeds and the spread of their objectives.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from practicum.platform.files import write_json

FILE_NAME = "summary.json"
SCHEMA_VERSION = 1
STATUSES = ("completed", "diverged", "pruned", "failed", "interrupted", "refused")


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class RunSummary:
    status: str  # one of STATUSES
    run_dir: str
    goal: dict[str, Any]  # metric, mode, target
    task_name: str | None = None
    objective: float | None = None  # the goal metric of the best checkpoint; None if not finite
    goal_met: bool = False
    verdict: str | None = None
    diagnosis: dict[str, Any] | None = None  # verdict, headline, evidence, next_steps
    metrics: dict[str, float] = field(default_factory=dict)  # flat: train/acc, val/acc, ...
    baseline: dict[str, float] | None = None  # the linear baseline's metrics on the same splits
    # the goal metric's standard error per split (the noise a difference must beat)
    standard_errors: dict[str, float] | None = None
    best_epoch: int | None = None
    epochs_trained: int | None = None
    best_checkpoint: str | None = None
    wall_time_s: float | None = None
    error: str | None = None  # failed, interrupted, refused: the one line that says why
    resume: str | None = None  # interrupted: the command that continues the run
    seeds: list[dict[str, Any]] | None = None  # repeats: seed, objective, run_dir of each
    objective_std: float | None = None  # repeats: spread of the seeds' objectives
    # the data audit: label_issues, label_noise_rate, duplicates, class shares (data_audit.py)
    audit: dict[str, Any] | None = None
    # what the run showed of its code: frozen parameters, probabilities as outputs, dead units
    # at the first and last epoch, ... (code_facts.py)
    code: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def finished(self) -> bool:
        """Training ran to its end (the metrics are those of the best checkpoint)."""
        return self.status in ("completed", "diverged")

    def write(self, run_dir: Path | str | None = None) -> Path:
        folder = Path(run_dir if run_dir is not None else self.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return write_json(folder / FILE_NAME, asdict(self))

    @classmethod
    def path(cls, run_dir: Path | str) -> Path:
        return Path(run_dir) / FILE_NAME

    @classmethod
    def read(cls, run_dir: Path | str) -> RunSummary | None:
        """The run's summary; None when it has none (the run died before writing it)."""
        path = cls.path(run_dir)
        if not path.is_file():
            return None
        return cls.from_dict(json.loads(path.read_text()), run_dir)

    @classmethod
    def from_dict(cls, content: dict[str, Any], run_dir: Path | str = "") -> RunSummary:
        """Also reads summaries written before the schema had a version (they lack `schema`)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in content.items() if key in known}
        values.setdefault("run_dir", str(run_dir))
        values.setdefault("goal", {})
        values.setdefault("status", "failed")
        values["schema"] = int(content.get("schema", 0))
        return cls(**values)

    @classmethod
    def unfinished(
        cls, status: str, run_dir: Path | str, goal: dict[str, Any], error: str, **extra: Any
    ) -> RunSummary:
        """A summary that says the run did not finish, so its folder never looks like a success."""
        return cls(status=status, run_dir=str(run_dir), goal=goal, error=error, **extra)
