"""Sanity checks to run before tuning: a failure points to a bug, not to a bad hyperparameter.

Every check works on copies of the task's net, so the task itself is left untouched, and runs under
its own seeded random state, so results repeat and the caller's random state is not disturbed.

The five here are the classic ones (loss at init, gradient check, batch independence, overfitting
a tiny subset, real against zeroed inputs); code_checks.py adds those that see the code. They run
on every task that follows the probe contract of `tasks.base.Task` (`probe_inputs`, `probe`,
`probe_loss`); a check that does not apply to a task is `skip`, with why. A batch's inputs are a
tensor, a `(padded, lengths)` pair for variable-length sequences, or a list of images (detection).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from practicum.config import ChecksConfig
from practicum.methodology import code_checks
from practicum.methodology.check_table import CheckResult, print_checks, write_checks
from practicum.methodology.gradient_check import BATCH_NORMS, gradient_check, gradient_check_of
from practicum.methodology.output_facts import dependence, mixing_layer
from practicum.methodology.unit_probe import seeded

if TYPE_CHECKING:
    from practicum.data.base import SplitDataModule as Data
    from practicum.tasks.base import Task

# a batch's inputs: a tensor, or (padded steps, lengths) for variable-length sequences
Inputs = Tensor | tuple[Tensor, Tensor]
__all__ = [
    "CheckResult",
    "gradient_check",
    "print_checks",
    "run_checks",
    "unsupported",
    "write_checks",
]


def unsupported(task: Any, datamodule: Any) -> str | None:
    """Why the checks cannot run on this task and data (one line), or None when they can."""
    if not all(
        callable(getattr(task, name, None)) for name in ("probe_inputs", "probe", "probe_loss")
    ):
        return (
            f"it probes practicum's tasks (tasks.base.Task: probe_inputs, probe, probe_loss) and "
            f"{type(task).__name__} is not one"
        )
    if not callable(getattr(datamodule, "loader", None)):
        return (
            f"it reads batches through loader(split) (data.base.SplitDataModule) and "
            f"{type(datamodule).__name__} has none"
        )
    return None


def run_checks(
    task: Task, datamodule: Data, settings: ChecksConfig | None = None
) -> list[CheckResult]:
    """The five classic checks, then those that see the code (code_checks.py)."""
    settings = settings or ChecksConfig()
    batch = code_checks.to_device(_first_batches(datamodule, 1)[0], _device(task.net))
    inputs = task.probe_inputs(batch)
    per_example = dependence(task, inputs, settings.independence_batch, settings.seed)
    results = [
        initial_loss(task, datamodule, settings),
        gradient_check_of(task, datamodule.input_shape, settings.seed, per_example),
        batch_independence(task, inputs, settings.seed, per_example),
    ]
    trained = None
    if classifies(task, batch):
        trained, overfit = _overfit(task, datamodule, settings)
        results += [overfit, input_independent_baseline(task, datamodule, settings)]
    else:
        why = (
            f"it measures class accuracy, and {type(task).__name__} is not a classifier: overfit "
            "two batches with `python train.py debug=overfit`"
        )
        results.append(CheckResult("overfit_tiny_subset", "skip", math.nan, "n/a", why))
        results.append(
            code_checks.zeroed_inputs(task, batch, settings.seed, per_example is not None)
        )
    return results + code_checks.run(task, datamodule, settings, trained)


def classifies(task: Any, batch: Any) -> bool:
    """A classifier of whole examples: a criterion over one label per example."""
    labels = batch[1] if isinstance(batch, list | tuple) and len(batch) == 2 else None
    return (
        getattr(task, "problem", None) == "classification"
        and hasattr(task, "criterion")
        and isinstance(labels, Tensor)
        and labels.ndim == 1
    )


def initial_loss(task: Task, datamodule: Data, settings: ChecksConfig) -> CheckResult:
    """At initialization the net should predict all classes equally: loss near log(num_classes)
    (per example, or per pixel for segmentation)."""
    if not isinstance(getattr(task, "criterion", None), nn.Module):
        why = f"a loss at chance needs a loss over classes, and {type(task).__name__} has none"
        return CheckResult("initial_loss", "skip", math.nan, "n/a", why)
    # eval mode but batch norm on batch statistics, as the first step sees them: the running
    # statistics at init (mean 0, variance 1) normalize nothing, and a deep net's eval-mode logits
    # at init are huge (a healthy Inception: 5e6 against log 10); dropout stays off
    net = copy.deepcopy(task.net).eval()
    for module in net.modules():
        if isinstance(module, BATCH_NORMS):
            module.train()
    batches = _first_batches(datamodule, settings.initial_loss_batches)
    with torch.no_grad(), seeded(settings.seed):
        losses = [task.criterion(net(x), y).item() * len(y) for x, y in _on(net, batches)]
    loss = sum(losses) / sum(len(y) for _, y in batches)
    if not isinstance(task.criterion, nn.CrossEntropyLoss):
        why = f"-log(1/num_classes) is for cross-entropy, not {type(task.criterion).__name__}"
        return CheckResult("initial_loss", "skip", loss, "n/a", why)
    expected = math.log(datamodule.num_classes)
    tolerance = settings.initial_loss_tolerance
    if any(y.ndim > 1 for _, y in batches):
        # per-pixel labels: neighbouring pixels share their logits, so the loss at init spreads
        # like that of a few examples, not of every pixel (a healthy SegNet: 1.26 to 1.67 over
        # five inits, against -log(1/4) = 1.39)
        tolerance *= 2
    distance = abs(loss - expected) / expected
    status = "pass" if distance <= tolerance else "fail"
    return CheckResult(
        "initial_loss",
        status,
        loss,
        f"within {tolerance:.0%} of {expected:.4f}",
        f"-log(1/{datamodule.num_classes}) = {expected:.4f}; measured {loss:.4f} ({distance:.1%} off) "
        "in eval mode with batch norm on batch statistics, on the first train batches",
    )


def batch_independence(
    task: Task, inputs: Any, seed: int = 0, per_example: tuple[float, float] | None = None
) -> CheckResult:
    """In eval mode, example 0's outputs must not depend on the other examples of its batch
    (`per_example`: code_facts.dependence already measured on these inputs)."""
    found = per_example if per_example is not None else dependence(task, inputs, seed=seed)
    if found is None:
        why = f"{type(task).__name__}'s outputs are not a tensor row per example (detections)"
        return CheckResult("batch_independence", "skip", math.nan, "n/a", why)
    own, leak = found
    if own == 0 and leak == 0:
        why = (
            "no output depends on the input at all, so nothing can mix; input_independent_baseline "
            "fails that"
        )
        return CheckResult("batch_independence", "skip", 0.0, "<= 1e-12", why)
    status = "pass" if leak <= 1e-12 else "fail"
    count = min(len(_values(inputs)), 4)
    detail = f"max |d output_0 / d x_j| = {leak:.3g} over the other {count - 1} examples"
    detail += f" (own: {own:.3g})"
    if status == "fail":
        where = mixing_layer(task, inputs)
        detail += (
            f": the net mixes examples in eval mode, first at {where or 'an unwatched call'} (a "
            "reshape that folds the batch axis into the features, batch statistics, or a sum "
            "over dim 0?)"
        )
    return CheckResult("batch_independence", status, leak, "<= 1e-12", detail)


def overfit_tiny_subset(task: Task, datamodule: Data, settings: ChecksConfig) -> CheckResult:
    """A fresh copy must memorize a couple of batches: if it cannot, look for a bug before tuning."""
    return _overfit(task, datamodule, settings)[1]


def _overfit(task: Task, datamodule: Data, settings: ChecksConfig) -> tuple[Task, CheckResult]:
    """The copy that tried to memorize a couple of batches, and how it did."""
    batches = _first_batches(datamodule, settings.overfit_batches)
    target = settings.overfit_target
    with seeded(settings.seed):
        trainee = copy.deepcopy(task)
        optimizer = trainee.optimizer_factory(trainee.parameter_groups())
        accuracy, steps = _accuracy(trainee.net, batches), 0
        while accuracy < target and steps < settings.overfit_steps:
            # measure every 10 steps: accuracy in eval mode costs a forward pass
            for _ in range(10):
                _train_step(trainee, optimizer, *batches[steps % len(batches)])
                steps += 1
            accuracy = _accuracy(trainee.net, batches)
    size = sum(len(y) for _, y in batches)
    return trainee, CheckResult(
        "overfit_tiny_subset",
        "pass" if accuracy >= target else "fail",
        accuracy,
        f">= {target:g}",
        f"train accuracy on {size} examples ({len(batches)} batches) after {steps} of at most "
        f"{settings.overfit_steps} steps, configured optimizer, constant learning rate",
    )


def input_independent_baseline(task: Task, datamodule: Data, settings: ChecksConfig) -> CheckResult:
    """Trained on zeroed inputs a model can only learn the class prior; on real inputs it must beat that."""
    real = _train_briefly(task, datamodule, settings, zero_inputs=False)
    zero = _train_briefly(task, datamodule, settings, zero_inputs=True)
    # comparing errors, not accuracies, keeps the rule fair when one class dominates the data
    ratio = (1 - real) / max(1 - zero, 1e-12)
    ratio_limit = settings.baseline_error_ratio
    same = ": the same, so the model makes no use of the input" if real == zero else ""
    return CheckResult(
        "input_independent_baseline",
        "pass" if ratio <= ratio_limit else "fail",
        ratio,
        f"error ratio <= {ratio_limit:g}",
        f"val accuracy {real:.3f} on real inputs vs {zero:.3f} on zeroed inputs "
        f"after {settings.baseline_epochs} epochs each (real-input error / zero-input error){same}",
    )


def _train_briefly(
    task: Task, datamodule: Data, settings: ChecksConfig, zero_inputs: bool
) -> float:
    """Validation accuracy of a fresh copy trained for `baseline_epochs`, optionally on zeroed inputs."""

    def prepare(x: Inputs) -> Inputs:
        return _map(x, torch.zeros_like) if zero_inputs else x

    with seeded(settings.seed):
        trainee = copy.deepcopy(task)
        optimizer = trainee.optimizer_factory(trainee.parameter_groups())
        for _ in range(settings.baseline_epochs):
            for x, y in datamodule.loader("train", shuffle=True):
                _train_step(trainee, optimizer, prepare(x), y)
    return _accuracy(trainee.net, [(prepare(x), y) for x, y in datamodule.loader("val")])


def _train_step(task: Task, optimizer: torch.optim.Optimizer, x: Inputs, y: Tensor) -> None:
    task.net.train()
    [(x, y)] = _on(task.net, [(x, y)])
    optimizer.zero_grad(set_to_none=True)
    task.criterion(task.net(x), y).backward()
    optimizer.step()


def _accuracy(net: nn.Module, batches: Sequence[tuple[Tensor, Tensor]]) -> float:
    net.eval()
    with torch.no_grad():
        correct = sum((net(x).argmax(dim=-1) == y).sum().item() for x, y in _on(net, batches))
    return correct / sum(len(y) for _, y in batches)


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters(), torch.empty(0)).device


def _on(net: nn.Module, batches: Sequence[tuple[Inputs, Tensor]]) -> list[tuple[Inputs, Tensor]]:
    """The batches on the net's device: checks run wherever the task's net lives."""
    device = _device(net)
    return [(_map(x, lambda t: t.to(device), lengths=True), y.to(device)) for x, y in batches]


def _first_batches(datamodule: Data, count: int) -> list[tuple[Inputs, Tensor]]:
    return list(islice(datamodule.loader("train", shuffle=False), count))


def _values(x: Inputs) -> Tensor:
    """The input values of a batch: the padded steps of a (padded, lengths) pair."""
    return x[0] if isinstance(x, tuple | list) else x


def _map(x: Inputs, function: Callable[[Tensor], Tensor], lengths: bool = False) -> Inputs:
    """`function` applied to a batch's input values (and to its lengths too, with `lengths`)."""
    if isinstance(x, tuple | list):
        padded, sizes = x
        return function(padded), function(sizes) if lengths else sizes
    return function(x)
