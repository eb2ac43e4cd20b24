"""Which case of the methodology a run is in, the evidence for it, and what to try next.

The verdict says which split misses the goal, on the goal metric of the best checkpoint:
- diverged: the training loss became non-finite or blew up far above where it started;
- high_train_error: even the training split misses the goal;
- high_val_error: training meets the goal, validation does not (a generalization gap);
- distribution_mismatch: validation meets the goal, test misses it by more than sampling noise;
- goal_met: validation meets it, and test too (or misses by less than its noise).

The case says why, from the evidence: the epoch and within-epoch loss curves, the loss at
initialization against chance (log C), the parameter count against the training examples, the
linear baseline, and the sampling noise of each split. Each case has its own first remedy:

| case            | evidence                                              | first remedy                 |
|-----------------|-------------------------------------------------------|------------------------------|
| cut_short       | debug limits (fast_dev_run, limit_train_batches)      | run it in full               |
| lr_too_high     | loss blew up against init, oscillates, or peaked early | a lower lr, or the range test |
| lr_too_low      | the loss hardly moved from its value at init          | a higher lr, or the range test |
| too_few_steps   | the loss is still falling (epochs, or within an epoch) | train longer                 |
| under_capacity  | flat curve, fewer parameters than training examples   | the model's capacity knob    |
| noise_floor     | train = val = test = baseline, flat, below the goal   | check the labels and target  |
| overfitting     | train meets, validation misses                        | regularize, more data        |
| mismatch        | val/test gap beyond the noise                         | a validation set like test   |
| gradient_bug    | a sanity check failed                                 | fix the code                 |
| code_defect     | the run's code facts (code_defects.py)                | fix that layer               |
| leakage, imbalance, noise_floor (labels) | the data audit (data_audit.py)   | fix the data or the goal     |

Cases that tuning cannot fix (a bug, a mismatch, a noise floor, too little data) set `stop`.
"""

from __future__ import annotations

import math
import statistics

from practicum.config.goal import Goal
from practicum.methodology.cases import Diagnosis, Remedy, RunFacts
from practicum.methodology.code_defects import code_case, code_evidence, defects
from practicum.methodology.commands import pasteable
from practicum.methodology.data_audit import (
    accuracy_ceiling,
    audit_evidence,
    converged,
    data_case,
)
from practicum.methodology.evidence import baseline_line, values_line
from practicum.methodology.generative_diagnosis import diagnose_gan, vae_collapse, vae_evidence
from practicum.methodology.history import History

KINDS = ("supervised", "vae", "gan")
VERDICTS = ("goal_met", "high_train_error", "high_val_error", "distribution_mismatch", "diverged")
CASES = (
    "goal_met",
    "cut_short",
    "lr_too_high",
    "lr_too_low",
    "too_few_steps",
    "under_capacity",
    "noise_floor",
    "underfitting",
    "overfitting",
    "too_little_data",
    "mismatch",
    "gradient_bug",
    "collapse",
    "leakage",
    "imbalance",
    "code_defect",
)

HEADLINES = {
    "goal_met": "The goal is met on validation and test.",
    "high_train_error": "High training error: the model does not even fit the training split.",
    "high_val_error": "Low training error, high validation error: the model does not generalize.",
    "distribution_mismatch": "Low validation error, high test error: validation and test seem to differ.",
    "diverged": "Training diverged: the training loss became non-finite or blew up.",
}
CASE_LINES = {
    "cut_short": "The run was cut short ({why}): too few steps to judge capacity or data.",
    "lr_too_high": "The learning rate is too high: {why}.",
    "lr_too_low": "The learning rate is too low: the loss hardly moved from its value at initialization.",
    "too_few_steps": "Too few steps: the training loss is still falling.",
    "under_capacity": "Too little capacity: the curve is flat and the model is small for the data.",
    "noise_floor": "A noise floor: train, validation, test and a linear model all agree below the goal.",
    "underfitting": "Underfitting: the curve is flat but the model is not small; tune the optimization first.",
    "overfitting": "Overfitting: the gap between training and validation is the problem.",
    "too_little_data": "Too little data: {why}.",
    "mismatch": "Validation and test differ by more than sampling noise.",
    "gradient_bug": "A sanity check failed ({why}): this is a bug, not a tuning problem.",
}
ON_PAPER = "The numbers reach the target, but they do not show the goal is met."
SHARES = ("acc", "f1", "miou", "map", "iou", "quality")  # metrics in [0, 1]


# -- curve evidence --------------------------------------------------------------------------


def _series(history: History, key: str) -> list[float]:
    return [values[key] for values in history.values() if key in values]


def has_diverged(history: History) -> bool:
    """Non-finite training loss, or a final training loss far above where it started and its best."""
    losses = _series(history, "train/loss")
    if any(not math.isfinite(v) for v in losses):
        return True
    return len(losses) >= 2 and losses[-1] > losses[0] and losses[-1] > 3 * min(losses)


def still_improving(history: History) -> bool:
    """Training loss fell by more than 2% over the last two epochs: more epochs would help."""
    losses = _series(history, "train/loss")
    return (
        len(losses) >= 3
        and losses[-1] < min(losses[:-1])
        and (losses[-3] - losses[-1]) > 0.02 * abs(losses[-3])
    )


def falling_within_epoch(steps: list[float]) -> bool:
    """The last quarter of an epoch's step losses is lower than the quarter before it by more than
    2% and more than twice its standard error: the loss was still falling when training ended.
    Medians: the short last batch of an epoch may score far off the rest."""
    finite = [v for v in steps if math.isfinite(v)]
    if len(finite) < 8:
        return False
    quarter = len(finite) // 4
    before, last = finite[-2 * quarter : -quarter], finite[-quarter:]
    drop = statistics.median(before) - statistics.median(last)
    spread = statistics.pstdev(before + last) / math.sqrt(quarter) if quarter > 1 else 0.0
    return drop > 0.02 * abs(statistics.median(before)) and drop > 2 * spread


def best_epoch_early(best: int | None, epochs: int) -> bool:
    """The best epoch came in the first 10% of a run of 10+ epochs: too long, or a learning rate too high."""
    return best is not None and epochs >= 10 and best < 0.1 * epochs


def overfitting(history: History) -> bool:
    """Validation loss rose well above its minimum while the training loss kept falling."""
    val, train = _series(history, "val/loss"), _series(history, "train/loss")
    if len(val) < 3 or len(train) != len(val):
        return False
    lowest = min(range(len(val)), key=val.__getitem__)
    return lowest < len(val) - 1 and val[-1] > 1.1 * val[lowest] and train[-1] < train[lowest]


def blew_up(facts: RunFacts) -> str | None:
    """How the loss blew up relative to where it started, if it did."""
    start = facts.chance_loss or facts.init_loss
    losses = [*_series(facts.history, "train/loss"), *facts.first_steps, *facts.last_steps]
    if any(not math.isfinite(v) for v in losses):
        return "the training loss became non-finite"
    if start and losses:
        worst = max(losses)
        if worst > 10 * start and worst > start + 5:
            return f"the training loss reached {worst:.4g} against {start:.3g} at initialization"
    if has_diverged(facts.history):
        return "the training loss ended far above where it started"
    return None


def oscillating(facts: RunFacts) -> bool:
    """The epoch training loss goes up and down by more than 10% again and again."""
    losses = _series(facts.history, "train/loss")
    if len(losses) < 5:
        return False
    moves = [b - a for a, b in zip(losses, losses[1:], strict=False)]
    turns = sum(
        1
        for a, b in zip(moves, moves[1:], strict=False)
        if a * b < 0 and abs(b) > 0.1 * abs(losses[0])
    )
    return turns >= 3


def hardly_moved(facts: RunFacts) -> bool:
    """After a whole epoch or more, the training loss is within 5% of its value at init."""
    start = facts.init_loss
    if start is None or not facts.last_steps or len(facts.first_steps) < 10:
        return False
    end = statistics.median(facts.last_steps[-max(len(facts.last_steps) // 4, 1) :])
    return math.isfinite(end) and end > 0.95 * start


def short_and_falling(facts: RunFacts) -> bool:
    """A run of one or two epochs whose training loss ended more than 5% below where it started:
    too short to say it converged, so too short to judge its capacity or its gap."""
    losses = [v for v in [*facts.first_steps, *facts.last_steps] if math.isfinite(v)]
    if len(facts.history) >= 3 or len(losses) < 2 or facts.init_loss is None:
        return False
    end = statistics.median(losses[-max(len(losses) // 4, 1) :])
    return end < 0.95 * facts.init_loss


def still_falling(facts: RunFacts) -> bool:
    return (
        still_improving(facts.history)
        or falling_within_epoch(facts.last_steps)
        or short_and_falling(facts)
    )


# -- noise --------------------------------------------------------------------------------


def is_share(goal: Goal) -> bool:
    return goal.metric.split("/", 1)[-1] in SHARES


def standard_error(facts: RunFacts, split: str) -> float | None:
    """The goal metric's standard error on a split: from per-example values when the run measured
    them, else the binomial error of a share of examples."""
    value, n = facts.metrics.get(facts.goal.at(split)), (facts.sizes or {}).get(split)
    if facts.noise and facts.noise.get(split) is not None:
        measured = facts.noise[split]
        # a share of exactly 0 or 1 measures no spread; it is still n examples' worth of evidence
        return 0.5 / n if measured == 0 and is_share(facts.goal) and n else measured
    if value is None or not n or not is_share(facts.goal) or not 0 <= value <= 1:
        return None
    return math.sqrt(max(value * (1 - value), 0.25 / n) / n)


def gap_noise(facts: RunFacts, a: str, b: str) -> float | None:
    """Two standard errors of the difference between two splits' goal metric."""
    ea, eb = standard_error(facts, a), standard_error(facts, b)
    if ea is None or eb is None:
        return None
    return 2 * math.sqrt(ea**2 + eb**2)


def tolerance(facts: RunFacts, a: str, b: str) -> float:
    """How far apart two values of the goal metric may be and still agree."""
    noise = gap_noise(facts, a, b)
    value = abs(facts.metrics.get(facts.goal.at(a)) or 0.0)
    floor = 0.02 if is_share(facts.goal) else 0.05 * value
    return max(noise or 0.0, floor)


# -- the verdict ----------------------------------------------------------------------------


def decide_verdict(facts: RunFacts) -> str:
    """Which split misses the goal. Validation meeting it while test misses by less than the
    sampling noise is `goal_met` (with that noted); by more, `distribution_mismatch`."""
    metrics, goal = facts.metrics, facts.goal
    losses = [v for k, v in metrics.items() if k.endswith("/loss")]
    if blew_up(facts) or any(not math.isfinite(v) for v in losses):
        return "diverged"
    met = {split: goal.met(metrics.get(goal.at(split))) for split in ("train", "val", "test")}
    if met["val"]:
        if goal.at("test") not in metrics or met["test"]:
            return "goal_met"
        gap = abs(metrics[goal.at("val")] - metrics[goal.at("test")])
        noise = gap_noise(facts, "val", "test")
        return "goal_met" if noise is not None and gap <= noise else "distribution_mismatch"
    return "high_val_error" if met["train"] else "high_train_error"


# -- the diagnosis --------------------------------------------------------------------------


def diagnose(facts: RunFacts) -> Diagnosis:
    """The verdict, the case behind it, the evidence, and the remedies in the order to try them,
    each command whole for this run (commands.py)."""
    return pasteable(_diagnose(facts), facts.overrides)


def _diagnose(facts: RunFacts) -> Diagnosis:
    if facts.kind not in KINDS:
        raise ValueError(f"diagnosis kind {facts.kind!r} is not one of {', '.join(KINDS)}")
    if facts.kind == "gan":
        diagnosis = diagnose_gan(facts)
        diverged = diagnosis.verdict == "diverged"
        diagnosis.evidence += code_evidence(facts.code, diverged)
        found = code_case(facts.code, diagnosis.verdict, diverged)
        if found is None:
            return diagnosis
        return _defect_diagnosis(facts, diagnosis.verdict, found, diagnosis.evidence)
    verdict = decide_verdict(facts)
    evidence = [values_line(facts.metrics, facts.goal)]
    evidence += curve_evidence(facts)
    if facts.baseline:
        evidence.append(baseline_line(facts.baseline, facts.metrics, facts.goal))
    evidence += audit_evidence(facts.audit, facts.goal, facts.metrics)
    if facts.kind == "vae":
        evidence += vae_evidence(facts.metrics)
    case, why = decide_case(facts, verdict)
    evidence += code_evidence(facts.code, verdict == "diverged")
    code = code_case(facts.code, verdict, verdict == "diverged")
    if code is not None and case != "gradient_bug":
        # a defect in the code comes before what the curves say: they were measured on it
        return _defect_diagnosis(facts, verdict, code, evidence)
    settled = converged(case, len(facts.history))
    found = data_case(facts.audit, facts.goal, facts.metrics, facts.sizes, settled)
    if found is not None and case not in ("gradient_bug", "lr_too_high", "collapse"):
        # a defect in the data comes before what the curves say: they were measured on it
        return _data_diagnosis(facts, verdict, found)
    if case == "collapse":
        verdict = "high_train_error"  # a collapsed generative model never meets its goal
    remedies = remedies_for(case, verdict, facts)
    headline = verdict_line(facts, verdict, case)
    if case in CASE_LINES:
        headline += " " + CASE_LINES[case].format(why=why)
    elif case == "collapse":
        headline += f" {why}"
    stop = STOPS.get(case)
    return Diagnosis(
        verdict=verdict,
        headline=headline,
        evidence=evidence,
        next_steps=[remedy.text for remedy in remedies],
        case=case,
        remedies=remedies,
        stop=stop,
    )


def verdict_line(facts: RunFacts, verdict: str, case: str) -> str:
    """The verdict in words, no stronger than the evidence: a goal met on validation whose
    test value misses the target is said so; a validation miss within the noise is no
    generalization gap."""
    goal, metrics = facts.goal, facts.metrics
    if verdict == "goal_met":
        return met_line(facts)
    if verdict == "high_val_error" and case not in ("overfitting", "too_little_data"):
        val = metrics.get(goal.at("val"))
        error = standard_error(facts, "val")
        n = (facts.sizes or {}).get("val")
        noise = f" (±{2 * error:.4f} on {n:,} examples)" if error is not None and n else ""
        return (
            f"Training meets the goal; validation ({val:.4f}) misses it, but the gap is within "
            f"the noise of the validation split{noise}: no evidence of overfitting."
        )
    return HEADLINES[verdict]


def met_line(facts: RunFacts) -> str:
    """`The goal is met on validation and test.`, or exactly how far test falls short."""
    goal = facts.goal
    test = facts.metrics.get(goal.at("test"))
    if test is None:
        return "The goal is met on validation (no test split was measured)."
    if goal.met(test):
        return HEADLINES["goal_met"]
    error = standard_error(facts, "test")
    n = (facts.sizes or {}).get("test")
    noise = f"±{2 * error:.3f} on {n:,} examples" if error is not None and n else "its noise"
    short = abs(goal.target - test)
    if error is not None and short <= 2 * error:
        return (
            f"The goal is met on validation; test {test:.4f} is below {goal.target:g} but within "
            f"its noise ({noise}): the test set is too small to confirm."
        )
    return (
        f"The goal is met on validation; test {test:.4f} misses {goal.target:g} by more than its "
        f"own noise ({noise}), though its gap to validation is within their joint noise: "
        "confirm on more test data before calling it met."
    )


def _data_diagnosis(facts: RunFacts, verdict: str, found) -> Diagnosis:
    evidence = [values_line(facts.metrics, facts.goal), *curve_evidence(facts)]
    if facts.baseline:
        evidence.append(baseline_line(facts.baseline, facts.metrics, facts.goal))
    evidence += audit_evidence(facts.audit, facts.goal, facts.metrics)
    return _defect_diagnosis(facts, verdict, found, evidence)


def _defect_diagnosis(facts: RunFacts, verdict: str, found, evidence: list[str]) -> Diagnosis:
    """The diagnosis of a defect in the data or the code, found before the curves are believed."""
    remedies = remedies_for(found.case, verdict, facts)
    # a target reached on leaked or constant-beatable scores is not reached (UNTRUSTED)
    opening = ON_PAPER if verdict == "goal_met" else HEADLINES[verdict]
    return Diagnosis(
        verdict=verdict,
        headline=f"{opening} {found.headline}",
        evidence=evidence,
        next_steps=[remedy.text for remedy in remedies],
        case=found.case,
        remedies=remedies,
        stop=found.stop,
    )


def curve_evidence(facts: RunFacts) -> list[str]:
    lines = []
    epochs = len(facts.history)
    if facts.init_loss is not None:
        chance = (
            f" (chance: log {facts.num_classes} = {facts.chance_loss:.3f})"
            if facts.chance_loss is not None and facts.num_classes
            else ""
        )
        end = (
            statistics.median(facts.last_steps[-max(len(facts.last_steps) // 4, 1) :])
            if facts.last_steps
            else None
        )
        moved = f", {end:.4g} at the end" if end is not None else ""
        lines.append(f"Training loss at initialization {facts.init_loss:.4g}{chance}{moved}.")
    if still_improving(facts.history):
        lines.append(f"The epoch training loss was still falling at the last epoch ({epochs}).")
    elif falling_within_epoch(facts.last_steps):
        lines.append("Within the last epoch the training loss was still falling.")
    if best_epoch_early(facts.best, epochs):
        lines.append(
            f"The best epoch ({facts.best}) came in the first 10% of {epochs} epochs: the "
            "learning rate may be too high, or the run too long."
        )
    if oscillating(facts):
        lines.append("The epoch training loss goes up and down again and again.")
    if overfitting(facts.history):
        lines.append("The validation loss rose while the training loss kept falling: overfitting.")
    if facts.n_params is not None and facts.sizes and facts.sizes.get("train"):
        ratio = facts.n_params / facts.sizes["train"]
        lines.append(
            f"{facts.n_params:,} trainable parameters for {facts.sizes['train']:,} training "
            f"examples ({ratio:.3g} per example)."
        )
    noise = gap_noise(facts, "val", "test")
    val, test = facts.metrics.get(facts.goal.at("val")), facts.metrics.get(facts.goal.at("test"))
    if noise is not None and val is not None and test is not None:
        side = "within" if abs(val - test) <= noise else "beyond"
        lines.append(
            f"Validation and test differ by {abs(val - test):.4f}, {side} their sampling noise "
            f"(±{noise:.4f} at 2 standard errors)."
        )
    lines += small_split_lines(facts)
    if facts.cut_short:
        lines.append(f"The run was cut short: {facts.cut_short}.")
    return lines


SMALL_SPLIT = 0.05  # 2 standard errors of a share above this: a split too small to judge by


def small_split_lines(facts: RunFacts) -> list[str]:
    """A held-out split whose goal metric moves by more than 0.05 from sample to sample is too
    small to judge differences below that; said, with the noise it implies."""
    lines = []
    for split in ("val", "test"):
        error, n = standard_error(facts, split), (facts.sizes or {}).get(split)
        if error is None or not n or not is_share(facts.goal) or 2 * error <= SMALL_SPLIT:
            continue
        lines.append(
            f"The {split} split has {n:,} examples: its {facts.goal.metric.split('/', 1)[-1]} "
            f"moves by ±{2 * error:.3f} (2 standard errors) from sample to sample, so smaller "
            "differences cannot be judged on it."
        )
    return lines


def far_apart(facts: RunFacts, a: str, b: str) -> bool:
    """Two held-out splits differ by more than twice their noise (4 standard errors of the
    difference) and more than the tolerance floor: not chance, whether or not either meets the
    goal (say, test at chance while validation is high)."""
    va, vb = facts.metrics.get(facts.goal.at(a)), facts.metrics.get(facts.goal.at(b))
    noise = gap_noise(facts, a, b)
    if va is None or vb is None or noise is None:
        return False
    return abs(va - vb) > max(2 * noise, 0.02 if is_share(facts.goal) else 0.0)


def generalization_gap(facts: RunFacts) -> bool:
    """Training meets the goal and validation misses it beyond its noise, with a train-val gap
    beyond the noise too: the evidence overfitting needs. A gap within the noise of a small
    validation split, or a miss by less than that noise, is no such evidence."""
    goal = facts.goal
    train, val = facts.metrics.get(goal.at("train")), facts.metrics.get(goal.at("val"))
    if train is None or val is None or not goal.met(train):
        return False
    error = standard_error(facts, "val")
    if error is None:
        return True
    miss = goal.target - val if goal.mode == "max" else val - goal.target
    noise = gap_noise(facts, "train", "val")
    return miss > 2 * error and (noise is None or abs(train - val) > noise)


def far_from_target(facts: RunFacts) -> bool:
    """The training error is more than twice the error the target allows (accuracy 0.58 for a
    target of 0.95): a capacity step must be large to matter."""
    goal = facts.goal
    train = facts.metrics.get(goal.at("train"))
    if train is None or not is_share(goal) or goal.mode != "max" or goal.met(train):
        return False
    return 1 - train > 2 * (1 - goal.target)


def small_model(facts: RunFacts) -> bool:
    n_train = (facts.sizes or {}).get("train")
    return facts.n_params is not None and bool(n_train) and facts.n_params < n_train


def at_noise_floor(facts: RunFacts) -> bool:
    """Train, validation and test agree, and so does a linear model: what the features and labels
    allow, not what the model can reach, is the limit."""
    goal, metrics = facts.goal, facts.metrics
    values = {s: metrics.get(goal.at(s)) for s in ("train", "val", "test")}
    base = (facts.baseline or {}).get(goal.metric)
    if values["train"] is None or values["val"] is None or base is None:
        return False
    if any(goal.met(v) for v in values.values() if v is not None):
        return False  # a split that meets the goal shows the model can: no floor below it
    rate = facts.audit.label_noise_rate if facts.audit is not None else None
    if rate is not None and is_share(goal) and accuracy_ceiling(rate) >= goal.target:
        return False  # the labels' own noise allows the target
    agree = abs(values["train"] - values["val"]) <= tolerance(facts, "train", "val")
    if values["test"] is not None:
        agree = agree and abs(values["val"] - values["test"]) <= tolerance(facts, "val", "test")
    if goal.met(base) or (goal.better(base, values["val"]) and not agree_within(facts, base)):
        return False  # a linear model does better: the limit is the model, not the labels
    near_baseline = abs(values["val"] - base) <= max(
        tolerance(facts, "val", "val"), 0.05 if is_share(goal) else 0.1 * abs(base)
    )
    return agree and near_baseline


def agree_within(facts: RunFacts, value: float) -> bool:
    """`value` is within the val split's noise (2 standard errors) of the model's val metric."""
    val = facts.metrics.get(facts.goal.at("val"))
    error = standard_error(facts, "val")
    return val is not None and error is not None and abs(value - val) <= 2 * error


def too_little_data(facts: RunFacts) -> str | None:
    n_train = (facts.sizes or {}).get("train")
    if n_train is None or facts.problem != "classification" or not facts.num_classes:
        return None
    per_class = n_train / facts.num_classes
    if per_class < 10:
        return f"{n_train} training examples for {facts.num_classes} classes ({per_class:.1f} per class)"
    return None


def lr_too_high_signal(facts: RunFacts) -> str | None:
    if oscillating(facts):
        return "the training loss oscillates from epoch to epoch"
    if best_epoch_early(facts.best, len(facts.history)) and overfitting(facts.history) is False:
        losses = _series(facts.history, "train/loss")
        if losses and losses[-1] > min(losses) * 1.2:
            return "the training loss peaked early and rose again"
    return None


def decide_case(facts: RunFacts, verdict: str) -> tuple[str, str]:
    """The case behind the verdict, and the words that say why."""
    if facts.checks_failed:
        return "gradient_bug", ", ".join(facts.checks_failed)
    if verdict == "diverged":
        return "lr_too_high", blew_up(facts) or "the loss became non-finite"
    if facts.kind == "vae":
        collapse = vae_collapse(facts.metrics)
        if collapse:
            return "collapse", collapse
    if verdict == "distribution_mismatch" or far_apart(facts, "val", "test"):
        return "mismatch", ""
    if verdict == "goal_met":
        return "goal_met", ""
    if facts.cut_short:
        return "cut_short", facts.cut_short
    signal = lr_too_high_signal(facts)
    if signal:
        return "lr_too_high", signal
    if hardly_moved(facts):
        return "lr_too_low", ""
    if still_falling(facts):
        return "too_few_steps", ""
    scarce = too_little_data(facts)
    if verdict == "high_val_error" and generalization_gap(facts):
        return ("too_little_data", scarce) if scarce else ("overfitting", "")
    if small_model(facts):
        return "under_capacity", ""
    if at_noise_floor(facts):
        return "noise_floor", ""
    return "underfitting", ""


STOPS = {
    "gradient_bug": "A sanity check failed: fix the code (the loss, the labels, the data pipeline) before tuning anything.",
    "mismatch": "Validation and test differ: collect validation data from the test distribution (explicit splits), then tune against it.",
    "noise_floor": "The target may be out of reach with these labels and features: check the labels, then revisit the target.",
    "too_little_data": "There is too little data to learn from: collect more before tuning.",
}


# -- remedies ------------------------------------------------------------------------------


def remedies_for(case: str, verdict: str, facts: RunFacts) -> list[Remedy]:
    """The remedies of a case, in the order to try them; each names its command."""
    r = _Remedies(facts, verdict)
    order = {
        "gradient_bug": [r.fix_bug, r.checks],
        "code_defect": [r.fix_code, r.checks],
        "lr_too_high": [r.lower_lr, r.range_test, r.stabilize, r.checks],
        "lr_too_low": [r.raise_lr, r.range_test, r.train_longer],
        "cut_short": [r.full_run, r.train_longer],
        "too_few_steps": [r.train_longer, r.range_test, r.capacity],
        "under_capacity": [r.capacity, r.train_longer, r.range_test, r.less_regularization],
        "noise_floor": [r.check_labels, r.revisit_target],
        "leakage": [r.remove_copies, r.fresh_validation],
        "imbalance": [r.balanced_goal, r.class_weights],
        "underfitting": [r.range_test, r.capacity, r.train_longer, r.less_regularization, r.checks],
        "overfitting": [r.more_data, r.regularize, r.early_stopping, r.smaller],
        "too_little_data": [r.more_data, r.regularize],
        "mismatch": [r.same_source, r.explicit_splits, r.fresh_validation],
        "collapse": [r.collapse],
        "goal_met": [r.confirm, r.raise_goal, r.simplify, r.margin],
    }[case]
    remedies = [remedy for make in order if (remedy := make()) is not None]
    return remedies


def _code(changes: list[list[str]]) -> str:
    """Each change as the command that makes it (commands.py puts the run's overrides in)."""
    return " or ".join(f"`python train.py {' '.join(change)}`" for change in changes)


class _Remedies:
    """The remedies, each built for this run: only knobs its config has, lr values that move away
    from the one that failed."""

    def __init__(self, facts: RunFacts, verdict: str = "") -> None:
        self.facts = facts
        self.verdict = verdict
        self.changes = facts.changes

    def _get(self, key: str) -> list[list[str]]:
        return [c for c in self.changes.get(key, []) if c]

    def fix_bug(self) -> Remedy:
        return Remedy(
            "fix_bug", "Fix the bug the failed check points at; no tuning helps before that."
        )

    def fix_code(self) -> Remedy:
        found = defects(self.facts.code, self.verdict == "diverged")
        fixes = "; ".join(f"{d.layer}: {d.fix}" for d in found)
        return Remedy("fix_code", f"Fix the code before tuning anything ({fixes}).")

    def checks(self) -> Remedy | None:
        if not self.changes.get("checks"):
            return None
        return Remedy(
            "checks",
            "Check the gradient and the pipeline: `python train.py debug=checks` (loss at init, "
            "gradient check, overfit two batches).",
        )

    def lower_lr(self) -> Remedy | None:
        changes = self._get("lr_down")
        if not changes:
            return None
        return Remedy(
            "lower_lr",
            f"Lower the learning rate (now {self.facts.lr:g}): {_code(changes)}.",
            changes,
        )

    def raise_lr(self) -> Remedy | None:
        changes = self._get("lr_up")
        if not changes:
            return None
        return Remedy(
            "raise_lr",
            f"Raise the learning rate (now {self.facts.lr:g}): {_code(changes)}.",
            changes,
        )

    def range_test(self) -> Remedy | None:
        if not self.changes.get("range_test"):
            return None
        return Remedy(
            "range_test",
            "Find the learning rate with the range test: `python train.py tune=lr`.",
            [["tune=lr"]],
        )

    def stabilize(self) -> Remedy | None:
        changes = self._get("stabilize")
        if not changes:
            return None
        return Remedy("stabilize", f"Stabilize the steps: {_code(changes)}.", changes)

    def full_run(self) -> Remedy:
        return Remedy(
            "full_run",
            f"Run it in full before judging it: drop the limits ({self.facts.cut_short}).",
        )

    def train_longer(self) -> Remedy | None:
        changes = self._get("epochs")
        if not changes:
            return None
        return Remedy(
            "train_longer",
            f"Train longer (now {self.facts.max_epochs} epochs): {_code(changes)}.",
            changes,
        )

    def capacity(self) -> Remedy:
        changes = self._get("capacity_up")
        if far_from_target(self.facts):
            far = self._get("capacity_up_far")
            changes = far + [c for c in changes if c not in far]
        if changes:
            return Remedy(
                "capacity", f"Add capacity: {_code(changes)}, or a bigger model.", changes
            )
        return Remedy(
            "capacity",
            "Add capacity: this model has no size knob; pick a bigger model (`model=...`).",
        )

    def less_regularization(self) -> Remedy | None:
        changes = self._get("regularize_down")
        if not changes:
            return None
        return Remedy("less_regularization", f"Regularize less: {_code(changes)}.", changes)

    def regularize(self) -> Remedy | None:
        changes = self._get("regularize_up")
        if not changes:
            return None
        return Remedy("regularize", f"Regularize: {_code(changes)}.", changes)

    def smaller(self) -> Remedy | None:
        changes = self._get("capacity_down")
        if not changes:
            return None
        return Remedy("smaller", f"Reduce capacity: {_code(changes)}.", changes)

    def early_stopping(self) -> Remedy | None:
        changes = self._get("patience_down")
        if not changes:
            return None
        return Remedy(
            "early_stopping", f"Stop earlier (the best epoch is kept): {_code(changes)}.", changes
        )

    def more_data(self) -> Remedy:
        return Remedy(
            "more_data",
            "Get more training data, the surest cure for a generalization gap; how much, and "
            "whether more would reach the goal at all: `python train.py tune=data_size` fits the "
            "learning curve and says how many examples the goal needs.",
        )

    def remove_copies(self) -> Remedy:
        return Remedy(
            "remove_copies",
            "Remove the validation and test examples that duplicate training examples "
            "(duplicates.csv in the run directory names both), or split by a group key (source, "
            "patient, session) so copies stay together; then train again.",
        )

    def balanced_goal(self) -> Remedy:
        return Remedy(
            "balanced_goal",
            "Judge by a metric that weighs every class: `python train.py goal=f1` (macro F1).",
        )

    def class_weights(self) -> Remedy:
        changes = self._get("class_weights")
        how = _code(changes) if changes else "`model.class_weights=balanced`"
        return Remedy(
            "class_weights",
            f"Weight the loss by class, so the rare classes count: {how}.",
            changes,
        )

    def check_labels(self) -> Remedy:
        audit = self.facts.audit
        if audit is not None and audit.label_issues:
            return Remedy(
                "check_labels",
                f"Clean the labels: label_issues.csv lists the {audit.label_issues} examples "
                "whose labels look wrong, most suspicious first, with the class the model "
                "suggests; fix or drop them, then train again.",
            )
        return Remedy(
            "check_labels",
            "Check the labels: look at training examples the model gets wrong; noisy or "
            "ambiguous labels cap every model (more capacity would only memorize the noise).",
        )

    def revisit_target(self) -> Remedy:
        base = (self.facts.baseline or {}).get(self.facts.goal.metric)
        where = f" (a linear model reaches {base:.4f})" if base is not None else ""
        return Remedy(
            "revisit_target",
            f"Revisit the target {self.facts.goal.describe()}{where}: zero error is often "
            "impossible; better features or cleaner labels move the limit, tuning does not.",
        )

    def same_source(self) -> Remedy:
        return Remedy(
            "same_source",
            "Check that validation and test come from the same distribution (source, "
            "preprocessing, time period).",
        )

    def explicit_splits(self) -> Remedy:
        how = self.facts.split_hint or "give the data module validation and test files of their own"
        return Remedy(
            "explicit_splits",
            f"Draw the validation split from the test distribution: {how}.",
        )

    def fresh_validation(self) -> Remedy:
        return Remedy(
            "fresh_validation",
            "After many tuning runs the validation score is optimistic: keep a fresh validation set.",
        )

    def collapse(self) -> Remedy | None:
        changes = self._get("collapse")
        text = "Fix the collapse before anything else"
        return Remedy("collapse", f"{text}: {_code(changes)}." if changes else f"{text}.", changes)

    def confirm(self) -> Remedy:
        return Remedy(
            "confirm",
            "Confirm it holds over seeds: `python train.py -m seed=0,1,2`.",
        )

    def raise_goal(self) -> Remedy:
        return Remedy(
            "raise_goal", "Raise the bar: `goal.target=...`, then iterate on the case that appears."
        )

    def margin(self) -> Remedy | None:
        if self.facts.lr is None or not self.changes.get("range_test"):
            return None
        lrs = ",".join(f"{self.facts.lr * f:.1g}" for f in (1 / 3, 1, 3))
        return Remedy(
            "margin",
            "Widen the margin with a small search over the most important knobs: "
            f"`python train.py -m optimizer.lr={lrs} optimizer.weight_decay=0,1e-4`.",
        )

    def simplify(self) -> Remedy | None:
        base = (self.facts.baseline or {}).get(self.facts.goal.metric)
        if base is None or not self.facts.goal.met(base):
            return None
        return Remedy(
            "simplify",
            "A linear model meets the goal too: prefer it (don't hunt a rabbit with a cannon): "
            "`python train.py model=linear`.",
            [["model=linear"]],
        )
