"""Which case of the methodology a run is in, the evidence for it, and what to try next.

The cases (verdicts), decided on the goal metric of the best checkpoint:
- diverged: the training loss became non-finite or blew up;
- high_train_error: even the training split misses the goal (underfitting or an optimization bug);
- high_val_error: training meets the goal, validation does not (a generalization gap);
- distribution_mismatch: validation meets the goal, test does not;
- goal_met: all of them meet it.
The learning curves add evidence that reorders the remedies.
"""

from __future__ import annotations

import math

from practicum.methodology.cases import Diagnosis
from practicum.methodology.evidence import baseline_line, values_line
from practicum.methodology.generative_diagnosis import diagnose_gan, vae_evidence
from practicum.methodology.goal import Goal
from practicum.methodology.history import History

KINDS = ("supervised", "vae", "gan")
VERDICTS = ("goal_met", "high_train_error", "high_val_error", "distribution_mismatch", "diverged")

HEADLINES = {
    "goal_met": "The goal is met on train, validation and test.",
    "high_train_error": "High training error: the model does not even fit the training split.",
    "high_val_error": "Low training error, high validation error: the model does not generalize.",
    "distribution_mismatch": "Low validation error, high test error: validation and test seem to differ.",
    "diverged": "Training diverged: the training loss became non-finite or blew up.",
}

# Remedies per verdict, in the default order; evidence moves some to the front.
# Those in CONDITIONAL are only given when evidence calls for them.
CONDITIONAL = {"simplify"}
REMEDIES: dict[str, list[tuple[str, str]]] = {
    "high_train_error": [
        (
            "checks",
            "Check the gradient and the pipeline: `python train.py debug=checks` (loss at init, gradient check, overfit two batches).",
        ),
        (
            "learning_rate",
            "Tune the learning rate, the most important knob: `python train.py tune=lr`, or `python train.py -m optimizer.lr={lr_down},{lr},{lr_up}`.",
        ),
        (
            "train_longer",
            "Train longer: raise `trainer.max_epochs` (now {max_epochs}) and `callbacks.early_stopping.patience`.",
        ),
        (
            "capacity",
            "Add capacity: more units, layers or channels (`model.net.hidden_units`, `model.net.depth`, `model.net.channels`), or a bigger model.",
        ),
        (
            "less_regularization",
            "Regularize less: lower `model.net.dropout` and `optimizer.weight_decay`.",
        ),
    ],
    "high_val_error": [
        ("more_data", "Get more training data: the surest cure for a generalization gap."),
        (
            "regularize",
            "Regularize: weight decay (`optimizer=adamw optimizer.weight_decay=1e-2`), dropout (`model.net.dropout=0.3`), batch norm (`model.net.batch_norm=true`).",
        ),
        ("augment", "Augment the training data, where the data module supports it."),
        (
            "early_stopping",
            "Stop earlier: early stopping keeps the best epoch; lower `callbacks.early_stopping.patience`.",
        ),
        ("smaller", "Reduce capacity: fewer units or layers."),
    ],
    "distribution_mismatch": [
        (
            "same_source",
            "Check that validation and test come from the same distribution (source, preprocessing, time period).",
        ),
        (
            "resplit",
            "Draw the validation split from the test distribution, or reshuffle the splits (`data.split_seed`).",
        ),
        (
            "selection",
            "After many tuning runs the validation score is optimistic: keep a fresh validation set.",
        ),
    ],
    "diverged": [
        ("lower_lr", "Lower the learning rate: `optimizer.lr={lr_down}` (now {lr})."),
        (
            "checks",
            "Check the gradient and the loss at initialization: `python train.py debug=checks`.",
        ),
        (
            "stabilize",
            "Stabilize: `trainer.gradient_clip_val=1.0`, batch norm, or a warm-up (`scheduler=warmup_cosine`).",
        ),
    ],
    "goal_met": [
        ("confirm", "Confirm it holds over seeds: `python train.py -m seed=0,1,2`."),
        ("raise_goal", "Raise the bar: `goal.target=...`, then iterate on the case that appears."),
        (
            "margin",
            "Widen the margin with a small search over the most important knobs: "
            "`python train.py -m optimizer.lr={lr_down},{lr},{lr_up} optimizer.weight_decay=0,1e-4`.",
        ),
        (
            "simplify",
            "A linear model meets the goal too: prefer it (don't hunt a rabbit with a cannon).",
        ),
    ],
}


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


PROPORTIONS = ("acc", "f1")  # metrics in [0, 1] whose sampling noise is about binomial


def sampling_noise(
    metrics: dict[str, float], goal: Goal, sizes: dict[str, int] | None
) -> float | None:
    """Two standard errors of the val-test difference of a proportion metric; None when unknown."""
    if not sizes or goal.metric.split("/", 1)[-1] not in PROPORTIONS:
        return None
    variance = 0.0
    for split in ("val", "test"):
        p, n = metrics.get(goal.at(split)), sizes.get(split)
        if p is None or not n:
            return None
        variance += p * (1 - p) / n
    return 2 * math.sqrt(variance)


def gap_within_noise(metrics: dict[str, float], goal: Goal, sizes: dict[str, int] | None) -> bool:
    """The val-test difference of the goal metric is smaller than the two splits' sampling noise."""
    noise = sampling_noise(metrics, goal, sizes)
    val, test = metrics.get(goal.at("val")), metrics.get(goal.at("test"))
    return noise is not None and val is not None and test is not None and abs(val - test) <= noise


def decide_verdict(
    metrics: dict[str, float], goal: Goal, history: History, sizes: dict[str, int] | None = None
) -> str:
    losses = [v for k, v in metrics.items() if k.endswith("/loss")]
    if has_diverged(history) or any(not math.isfinite(v) for v in losses):
        return "diverged"
    met = {split: goal.met(metrics.get(goal.at(split))) for split in ("train", "val", "test")}
    test_misses = goal.at("test") in metrics and not met["test"]
    if met["val"] and not test_misses:
        return "goal_met"
    if met["val"] and not gap_within_noise(metrics, goal, sizes):
        return "distribution_mismatch"
    # validation misses the goal, or passes it by less than its own noise while test misses it
    return "high_val_error" if met["train"] else "high_train_error"


def diagnose(
    metrics: dict[str, float],
    goal: Goal,
    history: History,
    best: int | None,
    settings: dict[str, float | int],
    baseline: dict[str, float] | None = None,
    sizes: dict[str, int] | None = None,
    kind: str = "supervised",
) -> Diagnosis:
    """The verdict, the evidence for it, and the remedies ordered by that evidence.

    `settings` fills the advice with the run's own values: lr, max_epochs; `sizes` are the split
    sizes, used to tell a real val-test gap from sampling noise; `kind` is what the task declares
    (`Task.diagnosis_kind`): "supervised", "vae" (the supervised cases plus the KL evidence) or
    "gan" (a two-player game with its own signals and cases).
    """
    if kind not in KINDS:
        raise ValueError(f"diagnosis kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "gan":
        return diagnose_gan(metrics, goal, history, best, settings)
    verdict = decide_verdict(metrics, goal, history, sizes)
    evidence = [values_line(metrics, goal)]
    noise = sampling_noise(metrics, goal, sizes)
    if (
        noise is not None
        and goal.met(metrics.get(goal.at("val")))
        and not goal.met(metrics.get(goal.at("test")))
    ):
        gap = abs(metrics[goal.at("val")] - metrics[goal.at("test")])
        side = "within" if gap <= noise else "beyond"
        evidence.append(
            f"Validation and test differ by {gap:.4f}, {side} the sampling noise of "
            f"{sizes['val']} and {sizes['test']} examples (±{noise:.4f} at 2 standard errors)."
        )
    first: list[str] = []
    epochs = len(history)
    if has_diverged(history):
        evidence.append("The training loss became non-finite or rose far above its minimum.")
    if still_improving(history):
        evidence.append(
            f"The training loss was still falling at the last epoch ({epochs}): more epochs would help."
        )
        first.append("train_longer")
    if best_epoch_early(best, epochs):
        evidence.append(
            f"The best epoch ({best}) came in the first 10% of {epochs} epochs: the learning rate may be too high."
        )
        first += ["learning_rate", "lower_lr", "early_stopping"]
    if overfitting(history):
        evidence.append(
            "The validation loss rose while the training loss kept falling: overfitting."
        )
        first += ["regularize", "early_stopping"]
    if baseline:
        evidence.append(baseline_line(baseline, metrics, goal))
        model_value, base_value = metrics.get(goal.metric), baseline.get(goal.metric)
        if verdict == "goal_met" and goal.met(base_value):
            first.append("simplify")
        if (
            verdict == "high_train_error"
            and model_value is not None
            and base_value is not None
            and not goal.better(model_value, base_value)
        ):
            first.append("capacity")
    if kind == "vae":
        evidence += vae_evidence(metrics)
    return Diagnosis(
        verdict, HEADLINES[verdict], evidence, _ordered_steps(verdict, first, settings)
    )


def _ordered_steps(verdict: str, first: list[str], settings: dict[str, float | int]) -> list[str]:
    remedies = [
        item for item in REMEDIES[verdict] if item[0] not in CONDITIONAL or item[0] in first
    ]
    rank = {key: i for i, key in enumerate(dict.fromkeys(first))}
    ordered = sorted(
        remedies, key=lambda item: (rank.get(item[0], len(rank)), remedies.index(item))
    )
    lr = float(settings.get("lr", 1e-3))
    values = {
        "lr": f"{lr:g}",
        "lr_down": f"{lr / 10:g}",
        "lr_up": f"{lr * 10:g}",
        "max_epochs": settings.get("max_epochs", "?"),
    }
    return [text.format(**values) for _, text in ordered]
