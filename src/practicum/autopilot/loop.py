"""The loop: train, read the diagnosis of the best step, make the one change it calls for, train
again; keep the change only if the goal metric on val beat the noise, else revert it and try the
next one. Stops when the goal is met, the budget ends, the case is one tuning cannot fix, or no
change is left, and says which."""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.panel import Panel

from practicum.autopilot.trail import Step, command, read_state, write_state, write_trail
from practicum.config import AUTOPILOT_KNOBS, AutopilotConfig, part_name, settings
from practicum.errors import UserError
from practicum.methodology.goal import Goal
from practicum.summary import RunSummary, finite_or_none

if TYPE_CHECKING:
    from practicum.run import RunOne

# each remedy the autopilot may apply, and the group of changes knobs.run_changes builds for it
KNOB_CHANGES = {
    "lower_lr": "lr_down",
    "raise_lr": "lr_up",
    "range_test": "range_test",
    "stabilize": "stabilize",
    "train_longer": "epochs",
    "capacity": "capacity_up",
    "smaller": "capacity_down",
    "regularize": "regularize_up",
    "less_regularization": "regularize_down",
    "early_stopping": "patience_down",
    "collapse": "collapse",
}
assert set(KNOB_CHANGES) == set(AUTOPILOT_KNOBS)
FINAL = ("goal_met", "unfixable", "no_remedy")  # an autopilot that stopped for these is done
# a range test's suggestion outside this is not applied (Lightning's lr_find once gave 1.7e-6)
SANE_LR = (1e-5, 1.0)


@dataclass
class Candidate:
    remedy: str
    change: list[str]
    why: str


@dataclass
class Stop:
    reason: str  # goal_met, unfixable, max_runs, max_minutes, no_remedy
    message: str


def run_autopilot(cfg: DictConfig, run_one: RunOne, given: list[str] | None = None) -> float:
    """`autopilot=default`: the loop over `run_one`; returns the best step's val objective.

    `given` is the command line's overrides (by default the running Hydra app's)."""
    pilot = Autopilot(cfg, run_one, given)
    return pilot.run()


def command_overrides(given: list[str] | None) -> list[str]:
    """The overrides of the command, without the autopilot's own."""
    if given is None:
        from hydra.core.hydra_config import HydraConfig

        given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return [o for o in given if _key(o) != "autopilot" and not _key(o).startswith("autopilot.")]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merged(overrides: list[str], change: list[str]) -> list[str]:
    """`overrides` with `change` applied: a key set again replaces its earlier value."""
    keys = {_key(o) for o in change}
    return [o for o in overrides if _key(o) not in keys] + list(change)


def _canonical(overrides: list[str]) -> frozenset[tuple[str, str]]:
    """The same config, however its overrides are spelled (1e-3 and 0.001)."""
    values = {}
    for o in overrides:
        key, _, value = o.partition("=")
        with contextlib.suppress(ValueError):
            value = repr(float(value))
        values[key.lstrip("+")] = value
    return frozenset(values.items())


def compose_step(overrides: list[str]) -> DictConfig:
    """The config `python train.py <overrides>` gets: from the running app when there is one."""
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        from practicum.config import compose

        return compose(Path(__file__).resolve().parents[3] / "conf", "train", overrides)
    from hydra import compose as hydra_compose

    cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    with open_dict(cfg):
        for group in cfg.get("parts") or {}:
            cfg.parts[group] = choices.get(group)
        del cfg["hydra"]
    return cfg


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
                _discard_fresh(own)  # the folder Hydra made for this command
        else:
            self.folder = own
            self.base = command_overrides(given)
        self.base_cfg = self.step_config(self.base, self.folder)
        self.goal = Goal.from_config(self.base_cfg.goal)
        self.check_knobs()
        self.started = time.perf_counter() - sum(s.wall_time_s for s in self.steps)
        self.tried = {_canonical(s.overrides) for s in self.steps}
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

    def check_knobs(self) -> None:
        """A model with none of the knobs the autopilot may turn is one line, before any run."""
        from practicum.knobs import run_changes

        allowed = self.settings.knobs or list(AUTOPILOT_KNOBS)
        changes = run_changes(self.base_cfg)
        if not any(changes.get(KNOB_CHANGES[k]) for k in allowed):
            model = part_name(self.base_cfg, "model")
            raise UserError(
                f"model={model} has none of the knobs autopilot.knobs allows "
                f"({', '.join(allowed)}): allow more (e.g. autopilot.knobs=null) or pick a "
                "model whose net declares them (docs/autopilot.md)"
            )

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
                f"{self.line(step)}  (done before)", soft_wrap=True, highlight=False, markup=False
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
        """The first change of the best step's remedies that no step has tried."""
        best = self.best()
        diagnosis = best.diagnosis or {}
        allowed = self.settings.knobs or list(AUTOPILOT_KNOBS)
        why = _why(diagnosis)
        for remedy in diagnosis.get("remedies") or []:
            if remedy["key"] not in allowed:
                continue
            for change in remedy.get("changes") or []:
                if (best.number, tuple(change)) in self.skipped:
                    continue
                if remedy["key"] == "range_test" or (
                    _canonical(merged(best.overrides, change)) not in self.tried
                ):
                    return Candidate(remedy["key"], list(change), why)
        beyond = [r["text"] for r in diagnosis.get("remedies") or [] if not r.get("changes")]
        also = f"; beyond tuning it advises: {beyond[0]}" if beyond else ""
        return Stop(
            "no_remedy",
            f"every change the diagnosis of step {best.number} "
            f"({diagnosis.get('case') or best.verdict}) calls for has been tried{also}",
        )

    def skip(self, candidate: Candidate, why: str) -> None:
        self.skipped.add((self.best().number, tuple(candidate.change)))
        self.console.print(f"         skipped {' '.join(candidate.change)}: {why}", soft_wrap=True)

    def resolve_range_test(self, candidate: Candidate) -> Candidate | None:
        """`tune=lr` as `optimizer.lr=<the range test's suggestion>`, when that is a sane value;
        the test runs once per best step."""
        self.skipped.add((self.best().number, tuple(candidate.change)))
        lr = self.range_test(self.best().overrides)
        if lr is None:
            return None
        change = [f"optimizer.lr={lr:.2g}"]
        if _canonical(merged(self.best().overrides, change)) in self.tried:
            self.console.print(f"         range test suggests {lr:.2g}, which a step has tried")
            return None
        return Candidate("range_test", change, candidate.why + f" (range test: {lr:.2g})")

    def range_test(self, overrides: list[str]) -> float | None:
        import lightning.pytorch as pl

        from practicum.build import build_datamodule, build_task
        from practicum.config import TuneConfig
        from practicum.files import write_json
        from practicum.methodology.lr_range import lr_range_test

        cfg = self.step_config(overrides, self.folder)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        try:
            result = lr_range_test(
                build_task(cfg),
                build_datamodule(cfg),
                seed=int(cfg.seed),
                **TuneConfig().test_kwargs(),
            )
        except UserError as exc:  # e.g. data the test cannot read in memory
            self.console.print(f"         range test not run: {exc}", soft_wrap=True)
            return None
        name = f"lr_range_{self.next_number():02d}"
        result.save_plot(
            self.folder / f"{name}.png", f"range test before step {self.next_number()}"
        )
        write_json(self.folder / f"{name}.json", result.as_dict())
        lr, current = float(result.suggestion), float(cfg.optimizer.lr)
        if not (math.isfinite(lr) and SANE_LR[0] <= lr <= SANE_LR[1]):
            self.console.print(
                f"         range test suggests {lr:.2g}, outside {SANE_LR[0]:g}..{SANE_LR[1]:g}: "
                "not applied",
                soft_wrap=True,
            )
            return None
        if abs(math.log10(lr / current)) < 0.2:
            self.console.print(f"         range test agrees with the lr ({current:g})")
            return None
        return lr

    def next_number(self) -> int:
        used = [int(p.name[5:]) for p in self.folder.glob("step_*") if p.name[5:].isdigit()]
        return max([*used, *(s.number for s in self.steps), -1]) + 1

    # -- one step -----------------------------------------------------------------------------

    def step_config(self, overrides: list[str], output_dir: Path) -> DictConfig:
        from practicum.validate import validate

        cfg = compose_step(list(overrides))
        with open_dict(cfg):
            cfg.paths.root_dir = self.root_dir
            cfg.paths.output_dir = str(output_dir)
            # one line per step on the terminal: no progress bar or model table (not a setting
            # of the run, so not in its overrides)
            if "enable_model_summary" in cfg.trainer:
                cfg.trainer.enable_model_summary = False
            if "progress_bar" in (cfg.get("callbacks") or {}):
                cfg.callbacks.progress_bar = None
                cfg.trainer.enable_progress_bar = False
        validate(cfg)
        return cfg

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
            self.tried.add(_canonical(overrides))
            self.skip(candidate, str(exc))
            return
        step = self.judged(number, candidate, overrides, summaries, time.perf_counter() - started)
        self.steps.append(step)
        self.tried.add(_canonical(overrides))
        self.console.print(self.line(step), soft_wrap=True, highlight=False, markup=False)
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
        middle = min(
            summaries,
            key=lambda s: abs((finite_or_none(s.objective) or 0) - (objective["val"] or 0)),
        )
        goal_met = all(s.goal_met for s in summaries)
        if number == 0 or not self.steps:
            decision, reason = "baseline", ""
        else:
            decision, reason = self.decide(objective["val"], se, goal_met)
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
            verdict=middle.verdict,
            case=(middle.diagnosis or {}).get("case"),
            goal_met=goal_met and decision != "reverted",
            wall_time_s=round(wall, 2),
            run_dirs=[s.run_dir for s in summaries],
            diagnosis=middle.diagnosis,
        )

    def decide(self, value: float | None, se: float | None, goal_met: bool) -> tuple[str, str]:
        """Kept when the val objective beats the best by more than the noise (two standard
        errors of the difference, at least `min_gain`), or reaches the goal the best missed."""
        best = self.best()
        if value is None:
            return "reverted", "no finite objective"
        if best.objective.get("val") is None:
            return "kept", "the first finite objective"
        gain = value - best.objective["val"]
        gain = gain if self.goal.mode == "max" else -gain
        noise = 2 * math.hypot(best.se_val or 0.0, se or 0.0)
        bar = max(noise, self.settings.min_gain)
        if gain > bar:
            return "kept", f"{gain:+.4f} > noise {bar:.4f}"
        if goal_met and gain > 0:
            return "kept", f"{gain:+.4f}, within noise {bar:.4f}, but meets the goal"
        return "reverted", f"{gain:+.4f}, not beyond noise {bar:.4f}"

    # -- output -------------------------------------------------------------------------------

    def line(self, step: Step) -> str:
        metric = self.goal.metric.split("/", 1)[-1]
        o = step.objective
        values = f"val {metric} {_shown(o.get('val'))} (train {_shown(o.get('train'))}, test {_shown(o.get('test'))})"
        change = " ".join(step.change) or "baseline"
        verdict = f"{step.decision} ({step.reason})" if step.reason else step.decision
        return (
            f"step {step.number:02d}  {change:<44} {values}  {verdict}  "
            f"[{step.case or step.verdict}]  {step.wall_time_s:.1f} s"
        )

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
            f"Best: step {best.number}, val {_shown(o.get('val'))}, test {_shown(o.get('test'))} "
            f"after {len(self.steps)} steps, {sum(len(s.run_dirs) for s in self.steps)} runs",
            f"Reproduce: {command(best.overrides)}",
            f"Trail: {self.folder / 'trail.md'}",
        ]
        color = "green" if best.goal_met else "yellow"
        self.console.print(Panel("\n".join(lines), title="Autopilot", border_style=color))
        value = o.get("val")
        return float("nan") if value is None else float(value)


def combine(
    goal: Goal, summaries: list[RunSummary]
) -> tuple[dict[str, float | None], float | None]:
    """The goal metric per split over a step's seeds (None when any seed has none), and the
    standard error of the val mean: the val split's sampling noise plus the seeds' spread."""
    objective: dict[str, float | None] = {}
    for split in ("train", "val", "test"):
        values = [
            finite_or_none(s.metrics.get(goal.at(split))) if s.status == "completed" else None
            for s in summaries
        ]
        objective[split] = None if None in values or not values else statistics.fmean(values)
    errors = [(s.standard_errors or {}).get("val") for s in summaries]
    if objective["val"] is None or None in errors:
        return objective, None
    spread = 0.0
    if len(summaries) > 1:
        values = [s.metrics[goal.at("val")] for s in summaries]
        spread = statistics.stdev(values) / math.sqrt(len(values))
    return objective, math.hypot(statistics.fmean(errors), spread)


def _why(diagnosis: dict[str, Any]) -> str:
    """The verdict and the case's own sentence of the headline (the evidence is in the run's
    report.md)."""
    headline = str(diagnosis.get("headline") or "")
    _, _, case_line = headline.partition(". ")
    return f"{diagnosis.get('verdict')}: {case_line or headline}"


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _discard_fresh(folder: Path) -> None:
    """Remove a folder that holds nothing but Hydra's record and logs (a resume's own)."""
    import shutil

    if not folder.is_dir():
        return
    for item in folder.rglob("*"):
        if (
            item.is_file()
            and ".hydra" not in item.relative_to(folder).parts
            and item.suffix != ".log"
        ):
            return
    shutil.rmtree(folder, ignore_errors=True)
