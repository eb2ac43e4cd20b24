"""Sanity checks to run before tuning: a failure points to a bug, not to a bad hyperparameter.

Every check works on copies of the task's net, so the task itself is left untouched, and runs under
its own seeded random state, so results repeat and the caller's random state is not disturbed.

The checks are for classifiers (a `criterion` over class labels, accuracy) on in-memory data;
`unsupported` says why they cannot run on anything else. A batch's inputs are a tensor, or a
`(padded, lengths)` pair for variable-length sequences.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from practicum.config import ChecksConfig
from practicum.methodology.run_summary import finite_or_none
from practicum.platform.files import write_json

if TYPE_CHECKING:
    from practicum.data.in_memory import InMemoryClassificationData as Data
    from practicum.tasks.classification import ClassificationTask as Task

# a batch's inputs: a tensor, or (padded steps, lengths) for variable-length sequences
Inputs = Tensor | tuple[Tensor, Tensor]
STATUSES = ("pass", "fail", "skip")
STYLES = {"pass": "bold green", "fail": "bold red", "skip": "yellow"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # one of STATUSES; "skip" when the check does not apply to this setup
    value: float  # the measured number; nan when nothing could be measured
    threshold: str  # what the value must satisfy, in words
    detail: str

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def as_dict(self) -> dict[str, Any]:
        plain = {"value": finite_or_none(self.value), "passed": self.passed}
        return {**dataclasses.asdict(self), **plain}


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch inside the block and give the caller's random state back afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def unsupported(task: Any, datamodule: Any) -> str | None:
    """Why the checks cannot run on this task and data (one line), or None when they can."""
    if not isinstance(getattr(datamodule, "splits", {}).get("train"), tuple):
        return "it needs in-memory data (digits, wine, breast_cancer, csv, npz, sequences)"
    if not hasattr(task, "criterion"):
        return (
            f"it checks classifiers (loss at init against chance, accuracy on a tiny subset, real "
            f"vs zeroed inputs) and {type(task).__name__} is not one"
        )
    return None


def run_checks(
    task: Task, datamodule: Data, settings: ChecksConfig | None = None
) -> list[CheckResult]:
    """All five checks, cheapest first."""
    settings = settings or ChecksConfig()
    inputs, targets = _first_batches(datamodule, 1)[0]
    x, y = _head(inputs, settings.independence_batch), targets[: settings.independence_batch]
    return [
        initial_loss(task, datamodule, settings),
        gradient_check(task.net, datamodule.input_shape, settings.seed),
        batch_independence(task.net, x, y, task.criterion),
        overfit_tiny_subset(task, datamodule, settings),
        input_independent_baseline(task, datamodule, settings),
    ]


def initial_loss(task: Task, datamodule: Data, settings: ChecksConfig) -> CheckResult:
    """At initialization the net should predict all classes equally: loss near log(num_classes)."""
    net = copy.deepcopy(task.net).eval()
    batches = _first_batches(datamodule, settings.initial_loss_batches)
    with torch.no_grad():
        losses = [task.criterion(net(x), y).item() * len(y) for x, y in _on(net, batches)]
    loss = sum(losses) / sum(len(y) for _, y in batches)
    if not isinstance(task.criterion, nn.CrossEntropyLoss):
        why = f"-log(1/num_classes) is for cross-entropy, not {type(task.criterion).__name__}"
        return CheckResult("initial_loss", "skip", loss, "n/a", why)
    expected = math.log(datamodule.num_classes)
    tolerance = settings.initial_loss_tolerance
    distance = abs(loss - expected) / expected
    status = "pass" if distance <= tolerance else "fail"
    return CheckResult(
        "initial_loss",
        status,
        loss,
        f"within {tolerance:.0%} of {expected:.4f}",
        f"-log(1/{datamodule.num_classes}) = {expected:.4f}; measured {loss:.4f} ({distance:.1%} off) "
        "in eval mode on the first train batches",
    )


def gradient_check(module: nn.Module, input_shape: Sequence[int], seed: int = 0) -> CheckResult:
    """`torch.autograd.gradcheck` in float64 on the input and on every parameter, in eval mode.

    Finite differences that straddle a kink (a ReLU input or a max-pool tie within the step of 0)
    disagree with the true gradient by chance, for one input; a wrong backward disagrees for every
    input. So a tensor that disagrees is checked again on another random input and counts as wrong
    only if it disagrees there too."""
    net = copy.deepcopy(module).double().eval()
    names = ["input", *(name for name, _ in net.named_parameters())]
    with _seeded(seed):  # fast mode's random projections repeat too
        wrong = _disagreeing(net, input_shape, seed, names)
        if wrong:
            wrong = _disagreeing(net, input_shape, seed + 1, wrong)
    agree = "analytical and numerical gradients agree"
    detail = f"wrong gradient for: {', '.join(wrong)}" if wrong else agree
    return CheckResult(
        "gradient_check",
        "fail" if wrong else "pass",
        float(len(wrong)),
        f"0 of {len(names)} tensors wrong",
        f"{detail} (float64, eval mode, 2 random inputs; a disagreement is confirmed on 2 more)",
    )


def _disagreeing(
    net: nn.Module, input_shape: Sequence[int], seed: int, names: Sequence[str]
) -> list[str]:
    """Which of the named tensors ("input" or a parameter) get a gradient unlike the numerical one
    on a batch of 2 random inputs drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *input_shape, dtype=torch.float64, generator=generator).to(_device(net))
    parameters = dict(net.named_parameters())
    wrong = []
    for name in names:
        if name == "input":
            function, tensor = net, x
        else:
            function, tensor = _with_parameter(net, name, x), parameters[name].detach()
        if not _gradcheck(function, tensor):
            wrong.append(name)
    return wrong


def _with_parameter(net: nn.Module, name: str, x: Tensor) -> Callable[[Tensor], Tensor]:
    return lambda value: torch.func.functional_call(net, {name: value}, (x,))


def _gradcheck(function: Callable[[Tensor], Tensor], tensor: Tensor) -> bool:
    # fast mode compares one random projection of the two Jacobians instead of building them whole:
    # a wrong backward still shows, and a CNN's thousands of weights take milliseconds, not minutes
    probe = tensor.detach().clone().requires_grad_(True)
    return torch.autograd.gradcheck(function, (probe,), fast_mode=True, raise_exception=False)


def batch_independence(
    module: nn.Module, inputs: Inputs, targets: Tensor, criterion: nn.Module
) -> CheckResult:
    """In eval mode, example 0's loss must not depend on the other examples of its batch."""
    net = copy.deepcopy(module).eval()
    [(x, y)] = _on(net, [(_map(inputs, lambda t: t.detach().clone()), targets)])
    values = _values(x)
    values.requires_grad_(True)
    criterion(net(x)[:1], y[:1]).backward()
    leak = values.grad[1:].abs().max().item()
    own = values.grad[0].abs().max().item()
    status = "pass" if leak <= 1e-12 else "fail"
    detail = f"max |d loss_0 / d x_j| = {leak:.3g} over the other {len(values) - 1} examples"
    detail += f" (own: {own:.3g})"
    if status == "fail":
        detail += ": the net mixes examples in eval mode (batch statistics or a sum over dim 0?)"
    return CheckResult("batch_independence", status, leak, "<= 1e-12", detail)


def overfit_tiny_subset(task: Task, datamodule: Data, settings: ChecksConfig) -> CheckResult:
    """A fresh copy must memorize a couple of batches: if it cannot, look for a bug before tuning."""
    batches = _first_batches(datamodule, settings.overfit_batches)
    target = settings.overfit_target
    with _seeded(settings.seed):
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
    return CheckResult(
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
    return CheckResult(
        "input_independent_baseline",
        "pass" if ratio <= ratio_limit else "fail",
        ratio,
        f"error ratio <= {ratio_limit:g}",
        f"val accuracy {real:.3f} on real inputs vs {zero:.3f} on zeroed inputs "
        f"after {settings.baseline_epochs} epochs each (real-input error / zero-input error)",
    )


def _train_briefly(
    task: Task, datamodule: Data, settings: ChecksConfig, zero_inputs: bool
) -> float:
    """Validation accuracy of a fresh copy trained for `baseline_epochs`, optionally on zeroed inputs."""

    def prepare(x: Inputs) -> Inputs:
        return _map(x, torch.zeros_like) if zero_inputs else x

    with _seeded(settings.seed):
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


def _head(x: Inputs, count: int) -> Inputs:
    """The first `count` examples of a batch's inputs."""
    return _map(x, lambda t: t[:count], lengths=True)


def write_checks(results: Sequence[CheckResult], path: str | Path) -> Path:
    """Write `checks.json` (into `path` when it is a directory); return the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / "checks.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    checks = [result.as_dict() for result in results]
    write_json(path, {"all_passed": all(r.passed for r in results), "checks": checks})
    return path


# columns below which the detail goes under the table rather than beside it
WIDE_TERMINAL = 110


def print_checks(results: Sequence[CheckResult], console: Console | None = None) -> None:
    """One row per check: status coloured, the measured value against its threshold, and why.

    The why is a column on a wide terminal and a line per check under the table on a narrow one,
    where a fifth column would squeeze the numbers apart."""
    console = console or Console()
    wide = console.width >= WIDE_TERMINAL
    table = Table(title="Sanity checks", title_justify="left")
    table.add_column("check", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("threshold", overflow="fold")
    if wide:
        table.add_column("detail", ratio=1, overflow="fold")
    for result in results:
        status = f"[{STYLES[result.status]}]{result.status.upper()}[/]"
        value = f"{result.value:.4g}" if math.isfinite(result.value) else "—"
        table.add_row(result.name, status, value, result.threshold, *[result.detail] * wide)
    console.print(table)
    if not wide:
        for result in results:
            console.print(f"[bold]{result.name}[/bold]: {result.detail}", overflow="fold")
