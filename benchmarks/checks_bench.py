"""What the checks that see the code cost (`make bench BENCH_ARGS="--only checks"`).

- checks: `python train.py debug=checks` on the default model (the digits CNN): the seconds the
  ten checks take (checks.json's `seconds`) and the command's wall time, process start to exit.
  Target: the checks <= 10 s.
- facts: the default `python train.py` with the code facts on and off (`diagnosis.code_facts`),
  sides alternating: the ratio of their wall_time_s, and within each run with the facts on, its
  wall time over the same less the facts' own seconds (immune to what the neighbours of a shared
  machine do between two runs). Target: <= 1.02.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from common import BenchError, Settings, python_script, require_success, run_process, spread


def _train(run_dir: Path, *overrides: str) -> tuple[dict[str, Any], float]:
    """`python train.py <overrides>` into run_dir: its summary.json (or checks.json) and the
    command's wall seconds."""
    started = time.perf_counter()
    run = run_process(python_script("train.py", *overrides, f"hydra.run.dir={run_dir}"))
    seconds = time.perf_counter() - started
    require_success(run, f"train.py {' '.join(overrides)}")
    name = "checks.json" if "debug=checks" in overrides else "summary.json"
    return json.loads((run_dir / name).read_text()), seconds


def checks_time(tmp: Path, rounds: int) -> dict[str, Any]:
    checks, command = [], []
    for r in range(rounds):
        content, seconds = _train(tmp / f"checks-{r}", "debug=checks")
        if not content["all_passed"]:
            raise BenchError(f"the default model fails a check: {content['checks']}")
        checks.append(content["seconds"])
        command.append(seconds)
    return {"checks_s": spread(checks), "command_s": spread(command)}


def facts_time(tmp: Path, rounds: int) -> dict[str, Any]:
    """The default run's wall_time_s with the facts on over off, sides alternating."""
    ratios, within, seconds = [], [], {"on": [], "off": [], "facts": []}
    for r in range(rounds):
        for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
            summary, _ = _train(tmp / f"facts-{side}-{r}", f"diagnosis.code_facts={side == 'on'}")
            seconds[side].append(summary["wall_time_s"])
            if side == "on":
                seconds["facts"].append(summary["code"]["seconds"])
        ratios.append(seconds["on"][-1] / seconds["off"][-1])
        within.append(seconds["on"][-1] / (seconds["on"][-1] - seconds["facts"][-1]))
    return {
        "ratio": spread(ratios),
        "within_run": spread(within),
        "wall_s": {k: spread(v) for k, v in seconds.items()},
    }


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as folder:
        tmp = Path(folder)
        result["checks"] = checks_time(tmp, settings.count(3, 1))
        log(f"checks {result['checks']}")
        result["facts"] = facts_time(tmp, settings.count(5, 1))
        log(f"facts {result['facts']}")
    result["meets_target"] = {
        "checks_le_10s": result["checks"]["checks_s"]["median"] <= 10,
        "facts_le_1.02": result["facts"]["within_run"]["median"] <= 1.02,
    }
    return result


def table(result: dict[str, Any]) -> Table:
    if "error" in result:
        raise BenchError(result["error"])
    out = Table(title="the checks that see the code: what they cost")
    for column in ("measure", "median", "min-max"):
        out.add_column(column)
    rows = [
        ("debug=checks, the ten checks (s)", result["checks"]["checks_s"]),
        ("debug=checks, the command (s)", result["checks"]["command_s"]),
        ("default run, facts on (s)", result["facts"]["wall_s"]["on"]),
        ("default run, facts off (s)", result["facts"]["wall_s"]["off"]),
        ("the facts' own seconds", result["facts"]["wall_s"]["facts"]),
        ("run / (run - facts)", result["facts"]["within_run"]),
        ("on / off runs", result["facts"]["ratio"]),
    ]
    for name, values in rows:
        out.add_row(name, f"{values['median']:.3f}", f"{values['min']:.3f}-{values['max']:.3f}")
    failed = [k for k, ok in result["meets_target"].items() if not ok]
    out.caption = "all targets met" if not failed else f"missed: {', '.join(failed)}"
    return out
