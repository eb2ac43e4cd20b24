"""The loop: train, read the diagnosis of the best step, make the one change it calls for, train
again; keep the change only if the goal metric on val beat the noise, else revert it and try the
next one. Stops when the goal is met, the budget ends, the case is one tuning cannot fix, or no
change is left, and says which."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.panel import Panel

from practicum.autopilot.choose import Candidate, Stop, check_knobs, next_candidate
from practicum.autopilot.judge import combine, decide, middle
from practicum.autopilot.range_test import suggested_lr
from practicum.autopilot.step_overrides import canonical, command_overrides, merged, step_config
from practicum.autopilot.trail import (
    Step,
    command,
    discard_fresh,
    read_state,
    shown,
    step_line,
    write_state,
    write_trail,
)
from practicum.config import AUTOPILOT_KNOBS, AutopilotConfig, settings
from practicum.config.goal import Goal
from practicum.errors import UserError
from practicum.methodology.run_summary import RunSummary

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

FINAL = ("goal_met", "unfixable", "no_remedy")  # an autopilot that stopped for these is done


def run_autopilot(cfg: DictConfig, run_one: RunOne, given: list[str] | None = None) -> float:
    """`autopilot=default`: the loop over `run_one`; returns the best step's val objective.

    `given` is the command line's overrides (by default the running Hydra app's)."""
    pilot = Autopilot(cfg, run_one, given)
    return pilot.run()


class Autopilot:
    def __init__(self, cfg: DictConfig, run_one: RunOne, given: list[str] | None) -> None:
        self.run_one = run_one
        self.settings = settings(cfg.autopilot, AutopilotConfig, "autopilot")
        self.root_dir = str(cfg.paths.root_dir)
        self.console = Console()
        own = Path(cfg.paths.output_dir)
        self.steps: list[Step] = []
        if self.settings.resume:
            self.folder = Path(self.settings.resume)
            state, self.steps = read_state(self.folder)
            self.base = list(state.get("base_overrides") or [])
            self.check_resumable(state)
            if own.resolve() != self.folder.resolve():
                discard_fresh(own)  # the folder Hydra made for this command
        else:
            self.folder = own
            self.base = command_overrides(given)
        self.base_cfg = self.step_config(self.base, self.folder)
        self.goal = Goal.from_config(self.base_cfg.goal)
        check_knobs(self.base_cfg, self.allowed())
        self.started = time.perf_counter() - sum(s.wall_time_s for s in self.steps)
        self.tried = {canonical(s.overrides) for s in self.steps}
        self.skipped: set[tuple[int, tuple[str, ...]]] = set()  # (best step, change) not run

    # -- checks before anything runs ----------------------------------------------------------

    def check_resumable(self, state: dict[str, Any]) -> None:
        stopped = state.get("stop_reason")
        if stopped in FINAL:
            raise UserError(
                f"autopilot.resume={self.folder}: that autopilot is done ({stopped}: "
                f"{state.get('stop_message')}); it is never rewritten"
            )
        done = sum(len(s.run_dirs) for s in self.steps)
        if done + self.settings.seeds > self.settings.max_runs:
            raise UserError(
                f"autopilot.max_runs={self.settings.max_runs} allows no more runs: the autopilot in "
                f"{self.folder} has done {done}; pass autopilot.max_runs=<more than {done}>"
            )

    def allowed(self) -> list[str]:
        return self.settings.knobs or list(AUTOPILOT_KNOBS)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> float:
        s = self.settings
        self.console.print(
            f"Autopilot: {self.goal.describe()}, up to {s.max_runs} runs and {s.max_minutes:g} "
            f"minutes; writing {self.folder}",
            soft_wrap=True,
        )
        for step in self.steps:
            self.console.print(
                f"{step_line(step, self.goal)}  (done before)",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
        if not self.steps:
            self.take(Candidate("baseline", [], "the composed config"))
        while True:
            stop = self.stop_now()
            candidate = None
            while stop is None:
                candidate = self.next_candidate()
                if isinstance(candidate, Stop):
                    stop, candidate = candidate, None
                elif candidate.remedy == "range_test":
                    candidate = self.resolve_range_test(candidate)
                    if candidate is not None:
                        break
                else:
                    break
            if stop is not None:
                return self.finish(stop)
            self.take(candidate)

    def best(self) -> Step:
        kept = [step for step in self.steps if step.decision in ("baseline", "kept")]
        return kept[-1]

    def stop_now(self) -> Stop | None:
        best, s = self.best(), self.settings
        diagnosis = best.diagnosis or {}
        if best.goal_met:
            test = best.objective.get("test")
            confirmed = "" if test is None else f"; on test {test:.4f}"
            return Stop(
                "goal_met",
                f"goal met on val at step {best.number} ({best.objective.get('val'):.4f}){confirmed}",
            )
        if diagnosis.get("stop"):
            return Stop("unfixable", f"{diagnosis.get('case')}: {diagnosis['stop']}")
        runs = sum(len(step.run_dirs) for step in self.steps)
        if runs + s.seeds > s.max_runs:
            return Stop("max_runs", f"the budget of {s.max_runs} runs is spent")
        if time.perf_counter() - self.started >= 60 * s.max_minutes:
            return Stop("max_minutes", f"the budget of {s.max_minutes:g} minutes is spent")
        return None

    def next_candidate(self) -> Candidate | Stop:
        return next_candidate(self.best(), self.allowed(), self.skipped, self.tried)

    def skip(self, candidate: Candidate, why: str) -> None:
        self.skipped.add((self.best().number, tuple(candidate.change)))
        self.console.print(f"         skipped {' '.join(candidate.change)}: {why}", soft_wrap=True)

    def resolve_range_test(self, candidate: Candidate) -> Candidate | None:
        """`tune=lr` as `optimizer.lr=<the range test's suggestion>`, when that is a sane value;
        the test runs once per best step."""
        self.skipped.add((self.best().number, tuple(candidate.change)))
        cfg = self.step_config(self.best().overrides, self.folder)
        lr = suggested_lr(cfg, self.folder, self.next_number(), self.console)
        if lr is None:
            return None
        change = [f"optimizer.lr={lr:.2g}"]
        if canonical(merged(self.best().overrides, change)) in self.tried:
            self.console.print(f"         range test suggests {lr:.2g}, which a step has tried")
            return None
        return Candidate("range_test", change, candidate.why + f" (range test: {lr:.2g})")

    def next_number(self) -> int:
        used = [int(p.name[5:]) for p in self.folder.glob("step_*") if p.name[5:].isdigit()]
        return max([*used, *(s.number for s in self.steps), -1]) + 1

    # -- one step -----------------------------------------------------------------------------

    def step_config(self, overrides: list[str], output_dir: Path) -> DictConfig:
        return step_config(overrides, self.root_dir, output_dir)

    def take(self, candidate: Candidate) -> None:
        """Run one step with the candidate change on top of the best step; keep or revert it."""
        baseline = not self.steps
        overrides = self.base if baseline else merged(self.best().overrides, candidate.change)
        number = self.next_number()
        step_dir = self.folder / f"step_{number:02d}"
        started = time.perf_counter()
        summaries = []
        try:
            for i in range(self.settings.seeds):
                run_dir = step_dir if self.settings.seeds == 1 else step_dir / f"seed_{i}"
                cfg = self.step_config(overrides, run_dir)
                with open_dict(cfg):
                    cfg.seed = int(cfg.seed) + i
                summaries.append(self.run_seed(cfg, baseline))
        except UserError as exc:
            if baseline:
                raise
            self.tried.add(canonical(overrides))
            self.skip(candidate, str(exc))
            return
        step = self.judged(number, candidate, overrides, summaries, time.perf_counter() - started)
        self.steps.append(step)
        self.tried.add(canonical(overrides))
        self.console.print(
            step_line(step, self.goal), soft_wrap=True, highlight=False, markup=False
        )
        self.save()

    def run_seed(self, cfg: DictConfig, baseline: bool) -> RunSummary:
        lightning_log = logging.getLogger("lightning.pytorch")
        level = lightning_log.level
        lightning_log.setLevel(logging.WARNING)  # "GPU available: False" once per run is noise
        try:
            self.run_one(cfg, quiet=True)
        except Exception as exc:
            if baseline or isinstance(exc, UserError):
                raise
        finally:
            lightning_log.setLevel(level)
        summary = RunSummary.read(cfg.paths.output_dir)
        if summary is None:  # died without writing one
            goal = self.goal.as_dict()
            summary = RunSummary.unfinished("failed", cfg.paths.output_dir, goal, "no summary")
        return summary

    def judged(
        self,
        number: int,
        candidate: Candidate,
        overrides: list[str],
        summaries: list[RunSummary],
        wall: float,
    ) -> Step:
        objective, se = combine(self.goal, summaries)
        speaker = middle(summaries, objective["val"])
        goal_met = all(s.goal_met for s in summaries)
        if number == 0 or not self.steps:
            decision, reason = "baseline", ""
        else:
            decision, reason = decide(
                self.goal, self.best(), objective["val"], se, goal_met, self.settings.min_gain
            )
        return Step(
            number=number,
            change=candidate.change,
            remedy=candidate.remedy,
            why=candidate.why,
            overrides=overrides,
            objective=objective,
            se_val=se,
            decision=decision,
            reason=reason,
            verdict=speaker.verdict,
            case=(speaker.diagnosis or {}).get("case"),
            goal_met=goal_met and decision != "reverted",
            wall_time_s=round(wall, 2),
            run_dirs=[s.run_dir for s in summaries],
            diagnosis=speaker.diagnosis,
        )

    # -- output -------------------------------------------------------------------------------

    def save(self, stop: Stop | None = None) -> None:
        best = self.best()
        state = {
            "goal": self.goal.as_dict(),
            "goal_met": bool(best.goal_met),
            "stop_reason": stop.reason if stop else None,
            "stop_message": stop.message if stop else None,
            "base_overrides": self.base,
            "settings": asdict(self.settings),
        }
        write_trail(self.folder, self.steps, self.goal)
        write_state(self.folder, state, self.steps, best)

    def finish(self, stop: Stop) -> float:
        self.save(stop)
        best = self.best()
        o = best.objective
        lines = [
            f"[bold]{'Goal met' if best.goal_met else 'Goal not met'}[/bold]: {self.goal.describe()}",
            f"Stopped: {stop.reason}: {stop.message}",
            f"Best: step {best.number}, val {shown(o.get('val'))}, test {shown(o.get('test'))} "
            f"after {len(self.steps)} steps, {sum(len(s.run_dirs) for s in self.steps)} runs",
            f"Reproduce: {command(best.overrides)}",
            f"Trail: {self.folder / 'trail.md'}",
        ]
        color = "green" if best.goal_met else "yellow"
        self.console.print(Panel("\n".join(lines), title="Autopilot", border_style=color))
        value = o.get("val")
        return float("nan") if value is None else float(value)
