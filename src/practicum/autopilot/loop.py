"""The loop: train, read the diagnosis of the best step, make the one change it calls for, train
again; keep the change only if the goal metric on val beat the noise, else revert it and try the
next one. Stops when the goal is met, the budget ends, the case is one tuning cannot fix, or no
change is left, and says which."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.panel import Panel

from practicum.autopilot.choose import (
    Candidate,
    Stop,
    candidates,
    check_knobs,
    no_remedy,
    why_inert,
)
from practicum.autopilot.judge import combine, decide, middle, paired_gain
from practicum.autopilot.parallel import run_at_once, warm_up
from practicum.autopilot.range_test import suggested_lr
from practicum.autopilot.step_overrides import (
    canonical,
    command_overrides,
    fingerprint,
    merged,
    override_key,
    step_config,
)
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
from practicum.methodology.commands import using
from practicum.methodology.paired import Paired
from practicum.methodology.run_summary import RunSummary

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

FINAL = ("goal_met", "unfixable", "no_remedy")  # an autopilot that stopped for these is done


def metrics_signature(summaries: list[RunSummary]) -> tuple | None:
    """Every metric of every seed, exactly: two steps with the same signature measured the same."""
    if not summaries or any(not s.metrics for s in summaries):
        return None
    return tuple(tuple(sorted(s.metrics.items())) for s in summaries)


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
            self.resumed_skips = list(state.get("skipped") or [])
            self.resumed_rounds = list(state.get("rounds") or [])
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
        # the changes not run, and why (autopilot.json, trail.md)
        self.skips: list[dict[str, Any]] = list(getattr(self, "resumed_skips", []))
        # {best step: {key: the step whose change of that key gave bit-identical metrics}}
        self.inert_keys: dict[int, dict[str, int]] = {}
        self._fingerprints: dict[str, int] = {}
        self._printed: set[int] = set()
        self._signatures: dict[tuple, int] = {}
        self._signed: set[int] = set()
        self.step_overrides: dict[str, list[str]] = {}  # by run directory
        # steps run at once: their numbers, the wall time of the round and the sum of their runs'
        self.rounds: list[dict[str, Any]] = list(getattr(self, "resumed_rounds", []))

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
        if s.parallel > 1:
            warm_up(s.parallel)
        if not self.steps:
            self.take([Candidate("baseline", [], "the composed config")])
        while True:
            stop = self.stop_now()
            if stop is not None:
                return self.finish(stop)
            chosen = self.plan()
            if isinstance(chosen, Stop):
                return self.finish(chosen)
            self.take(chosen)

    def plan(self) -> list[Candidate] | Stop:
        """The next step's candidate changes: up to `parallel` of them (fewer when the budget
        left is smaller), each one that can act and composes a config no step has run."""
        runs_left = self.settings.max_runs - sum(len(s.run_dirs) for s in self.steps)
        wanted = max(1, min(self.settings.parallel, runs_left // self.settings.seeds))
        chosen: list[Candidate] = []
        planned: set[str] = set()
        best = self.best()
        while len(chosen) < wanted:
            found = next(candidates(best, self.allowed(), self.skipped, self.tried), None)
            if found is None:
                break
            if found.remedy == "range_test":
                found = self.resolve_range_test(found)
                if found is None:
                    continue
            self.skipped.add((best.number, tuple(found.change)))  # considered from this best
            why = self.why_not(found, planned)
            if why is not None:
                self.note_skip(found, why)
                continue
            chosen.append(found)
        return chosen or no_remedy(best)

    def why_not(self, candidate: Candidate, planned: set[str]) -> str | None:
        """Why running this change would waste a run: it cannot act, an earlier step showed
        that its knob changes nothing here, or its config is one a step has run."""
        best = self.best()
        overrides = merged(best.overrides, candidate.change)
        try:
            cfg = self.step_config(overrides, self.folder / "planned")
        except UserError as exc:
            return str(exc)
        inert = why_inert(candidate, best, self.goal, cfg)
        if inert is not None:
            return inert
        keys = {override_key(o) for o in candidate.change}
        for key, step in self.inert_keys.get(best.number, {}).items():
            if key in keys and len(keys) == 1:
                return f"changing {key} at step {step} gave bit-identical metrics"
        resolved = fingerprint(cfg)
        earlier = self.fingerprints().get(resolved)
        if earlier is not None:
            return f"its resolved config is the one step {earlier} ran"
        if resolved in planned:
            return "its resolved config is another candidate's of this step"
        planned.add(resolved)
        return None

    def fingerprints(self) -> dict[str, int]:
        """The resolved config of every step run so far, however its overrides were spelled."""
        for step in self.steps:
            if step.number not in self._printed:
                try:
                    cfg = self.step_config(step.overrides, self.folder / "planned")
                    self._fingerprints[fingerprint(cfg)] = step.number
                except UserError:
                    pass
                self._printed.add(step.number)
        return self._fingerprints

    def note_skip(self, candidate: Candidate, why: str) -> None:
        """A change not run, in the trail (autopilot.json `skipped`) and on the terminal."""
        self.skips.append(
            {"best_step": self.best().number, "change": candidate.change, "reason": why}
        )
        self.console.print(f"         skipped {' '.join(candidate.change)}: {why}", soft_wrap=True)

    def best(self) -> Step:
        """The latest kept step (a step keeps at most one of its candidates): the next change
        builds on it."""
        kept = [step for step in self.steps if step.decision in ("baseline", "kept")]
        return max(kept, key=lambda step: step.number)

    def stop_now(self) -> Stop | None:
        best, s = self.best(), self.settings
        diagnosis = best.diagnosis or {}
        if best.goal_met:
            test, val = best.objective.get("test"), best.objective.get("val")
            where = f"at step {best.number} (val {val:.4f})"
            if test is None:
                return Stop("goal_met", f"goal met on validation {where}; no test split measured")
            if self.goal.met(test):
                return Stop("goal_met", f"goal met on validation and test {where}, test {test:.4f}")
            # the diagnosis says exactly how far test falls short, and whether that is noise
            headline = str(diagnosis.get("headline") or "").split(". ")[0]
            return Stop("goal_met", f"{where}: {headline}")
        if diagnosis.get("stop"):
            case = diagnosis.get("case")
            return Stop("unfixable", f"{case}: {diagnosis['stop']}", case)
        runs = sum(len(step.run_dirs) for step in self.steps)
        if runs + s.seeds > s.max_runs:
            return Stop("max_runs", f"the budget of {s.max_runs} runs is spent")
        if time.perf_counter() - self.started >= 60 * s.max_minutes:
            return Stop("max_minutes", f"the budget of {s.max_minutes:g} minutes is spent")
        return None

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

    def take(self, chosen: list[Candidate]) -> None:
        """Run one step per candidate change on top of the best step (at once when there are
        several); judge each against the best on the same val examples; keep at most one."""
        baseline = not self.steps
        started = time.perf_counter()
        jobs: list[tuple[Candidate, int, list[str], list[DictConfig]]] = []
        number = self.next_number()
        for candidate in chosen:
            overrides = self.base if baseline else merged(self.best().overrides, candidate.change)
            step_dir = self.folder / f"step_{number:02d}"
            try:
                configs = []
                for i in range(self.settings.seeds):
                    run_dir = step_dir if self.settings.seeds == 1 else step_dir / f"seed_{i}"
                    cfg = self.step_config(overrides, run_dir)
                    with open_dict(cfg):
                        cfg.seed = int(cfg.seed) + i
                    configs.append(cfg)
                    seeded = merged(overrides, [f"seed={cfg.seed}"]) if i else overrides
                    self.step_overrides[str(cfg.paths.output_dir)] = seeded
            except UserError as exc:
                if baseline:
                    raise
                self.tried.add(canonical(overrides))
                self.note_skip(candidate, str(exc))
                continue
            jobs.append((candidate, number, overrides, configs))
            number += 1
        if not jobs:
            return
        try:
            results = self.run_jobs([configs for *_, configs in jobs], baseline)
        except UserError as exc:
            if baseline:
                raise
            for candidate, _, overrides, _ in jobs:
                self.tried.add(canonical(overrides))
                self.note_skip(candidate, str(exc))
            return
        wall = time.perf_counter() - started
        own = [sum(s.wall_time_s or 0.0 for s in summaries) for summaries in results]
        steps = [
            # several at once: each step's time is its own runs'; the round's is in `rounds`
            self.judged(number, candidate, overrides, summaries, wall if len(jobs) == 1 else mine)
            for (candidate, number, overrides, _), summaries, mine in zip(
                jobs, results, own, strict=True
            )
        ]
        if len(jobs) > 1:
            self.rounds.append(
                {
                    "steps": [step.number for step in steps],
                    "wall_s": round(wall, 2),
                    "runs_wall_s": round(sum(own), 2),
                }
            )
        self.keep_one(steps)
        for step, summaries in zip(steps, results, strict=True):
            self.same_as_before(step, summaries)
            self.steps.append(step)
            self.tried.add(canonical(step.overrides))
            self.console.print(
                step_line(step, self.goal), soft_wrap=True, highlight=False, markup=False
            )
        self.save()

    def run_jobs(self, jobs: list[list[DictConfig]], baseline: bool) -> list[list[RunSummary]]:
        """Every seed of every candidate; at once in processes of their own when `parallel`."""
        if self.settings.parallel > 1 and sum(len(configs) for configs in jobs) > 1:
            flat = [cfg for configs in jobs for cfg in configs]
            run_at_once(self.run_one, flat, [self.overrides_of(cfg) for cfg in flat])
            return [[self.read_summary(cfg) for cfg in configs] for configs in jobs]
        return [[self.run_seed(cfg, baseline) for cfg in configs] for configs in jobs]

    def keep_one(self, steps: list[Step]) -> None:
        """Of the candidates of one step that beat the best, the one that gained most is kept."""
        kept = [step for step in steps if step.decision == "kept"]
        if len(kept) < 2:
            return
        winner = max(kept, key=lambda step: step.gain if step.gain is not None else -math.inf)
        for step in kept:
            if step is not winner:
                step.decision = "reverted"
                step.reason += f"; step {winner.number} gained more"

    def same_as_before(self, step: Step, summaries: list[RunSummary]) -> None:
        """A run whose metrics are bit-identical to an earlier step's is one finding, not two:
        the change did not act. Its knob is not turned again from the same best step."""
        signature = metrics_signature(summaries)
        if signature is None:
            return
        earlier = self.signatures().get(signature)
        if earlier is None or step.decision == "baseline":
            self._signatures[signature] = step.number
            return
        step.decision = "reverted"
        step.reason = f"bit-identical metrics to step {earlier}: the change did not act"
        step.goal_met = False
        best = self.best().number
        for override in step.change:
            self.inert_keys.setdefault(best, {})[override_key(override)] = step.number

    def signatures(self) -> dict[tuple, int]:
        for step in self.steps:
            if step.number not in self._signed:
                summaries = [RunSummary.read(d) for d in step.run_dirs]
                if all(s is not None for s in summaries):
                    signature = metrics_signature(summaries)
                    if signature is not None:
                        self._signatures.setdefault(signature, step.number)
                self._signed.add(step.number)
        return self._signatures

    def read_summary(self, cfg: DictConfig) -> RunSummary:
        summary = RunSummary.read(cfg.paths.output_dir)
        if summary is None:  # died without writing one
            goal = self.goal.as_dict()
            summary = RunSummary.unfinished("failed", cfg.paths.output_dir, goal, "no summary")
        return summary

    def overrides_of(self, cfg: DictConfig) -> list[str]:
        """The command line that trains this step's run: what its advice repeats."""
        return self.step_overrides.get(str(cfg.paths.output_dir), [])

    def run_seed(self, cfg: DictConfig, baseline: bool) -> RunSummary:
        lightning_log = logging.getLogger("lightning.pytorch")
        level = lightning_log.level
        lightning_log.setLevel(logging.WARNING)  # "GPU available: False" once per run is noise
        try:
            with using(self.overrides_of(cfg)):
                self.run_one(cfg, quiet=True)
        except Exception as exc:
            if baseline or isinstance(exc, UserError):
                raise
        finally:
            lightning_log.setLevel(level)
        return self.read_summary(cfg)

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
        paired: Paired | str = "the baseline"
        if number == 0 or not self.steps:
            decision, reason = "baseline", ""
        else:
            best = self.best()
            paired = paired_gain(self.goal, best, [s.run_dir for s in summaries])
            decision, reason = decide(
                self.goal, best, objective["val"], se, goal_met, self.settings.min_gain, paired
            )
        gain = gain_se = None
        if isinstance(paired, Paired):
            gain, gain_se = paired.gain, paired.se
        elif self.steps and objective["val"] is not None:
            before = self.best().objective.get("val")
            if before is not None:
                gain = (objective["val"] - before) * (1 if self.goal.mode == "max" else -1)
                gain_se = math.hypot(self.best().se_val or 0.0, se or 0.0)
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
            gain=None if gain is None else round(gain, 6),
            gain_se=None if gain_se is None else round(gain_se, 6),
            paired=isinstance(paired, Paired),
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
            "skipped": self.skips,
            "rounds": self.rounds,
            "stop_case": stop.case if stop else None,
        }
        write_trail(self.folder, self.steps, self.goal, self.skips)
        write_state(self.folder, state, self.steps, best)

    def outcome_words(self, best: Step) -> str:
        if not best.goal_met:
            return "Goal not met"
        test = best.objective.get("test")
        if test is not None and not self.goal.met(test):
            return "Goal met on validation, not confirmed on test"
        return "Goal met"

    def finish(self, stop: Stop) -> float:
        self.save(stop)
        best = self.best()
        o = best.objective
        lines = [
            f"[bold]{self.outcome_words(best)}[/bold]: {self.goal.describe()}",
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
