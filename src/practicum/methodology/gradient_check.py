"""The gradient check: `torch.autograd.gradcheck` of a net, or of a task's probe, against finite
differences, in float64, on the input and on every parameter (checks.py runs it)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from practicum.methodology.check_table import CheckResult
from practicum.methodology.unit_probe import seeded, tensors_of

# torch.autograd.gradcheck's tolerances, in float64, and its step, then smaller ones: finite
# differences across a ReLU's kink disagree by chance, and the chance shrinks with the step (a
# SegNet's thousands of activations near zero), while a wrong backward disagrees at every step
ATOL, RTOL = 1e-5, 1e-3
STEPS = (1e-6, 1e-7, 1e-8)
# batch norm's layers, each with running statistics that are a placeholder at init
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# the standard deviation of the random shift of every weight before a check (see gradient_check)
JITTER = 1e-3


def gradient_check_of(
    task: Any, input_shape: Sequence[int], seed: int, per_example: tuple[float, float] | None
) -> CheckResult:
    """The gradient check of a task's probe (`per_example`: None when its outputs are not a
    tensor row per example, code_facts.dependence)."""
    if per_example is None:
        why = (
            f"{type(task).__name__}'s outputs are not a tensor row per example (detections after "
            "non-maximum suppression), so they have no gradient to compare"
        )
        return CheckResult("gradient_check", "skip", math.nan, "n/a", why)
    return gradient_check(task, input_shape, seed, call=_probe_outputs)


def _probe_outputs(task: Any, x: Any) -> Any:
    return task.probe(x)[0]


def gradient_check(
    module: nn.Module,
    input_shape: Sequence[int],
    seed: int = 0,
    call: Callable[[Any, Tensor], Any] | None = None,
) -> CheckResult:
    """`torch.autograd.gradcheck` in float64 on the input and on every parameter, in eval mode, of
    `module` (or of `call(module, x)`, such as a task's probe). Random draws inside (a VAE's code)
    repeat on every call, so finite differences see one function.

    Finite differences that straddle a kink (a ReLU input or a max-pool tie within the step of 0)
    disagree with the true gradient by chance, for one input; a wrong backward disagrees for every
    input. So a tensor that disagrees is checked again on another random input and counts as wrong
    only if it disagrees there too. Kinks that every input hits (a zero bias after the zeros a
    max-unpool leaves, at initialization) are moved off by a small random shift of the weights
    (JITTER), drawn anew for each input: a wrong backward is wrong at any weights."""
    net = _Probed(copy.deepcopy(module).double().eval(), call, seed)
    names = ["input", *(name for name, _ in net.named_parameters())]
    try:
        with seeded(seed):  # the caller's random state is left as it was
            wrong = _disagreeing(net, input_shape, seed, names)
            if wrong:
                wrong = _disagreeing(net, input_shape, seed + 1, wrong)
    except RuntimeError as exc:  # layers .double() does not reach: not registered as modules
        why = f"the net does not run in float64: {str(exc).splitlines()[0]}"
        return CheckResult("gradient_check", "skip", math.nan, "n/a", why)
    agree = "analytical and numerical gradients agree"
    shown = [_Probed.shown(name) for name in wrong]
    detail = f"wrong gradient for: {', '.join(shown)}" if wrong else agree
    return CheckResult(
        "gradient_check",
        "fail" if wrong else "pass",
        float(len(wrong)),
        f"0 of {len(names)} tensors wrong",
        f"{detail} (float64, eval mode, a random projection of each Jacobian on 2 random inputs; "
        "a disagreement is confirmed at smaller steps and on 2 more inputs)",
    )


class _Probed(nn.Module):
    """`call(inner, x)` (or `inner(x)`) as a forward that returns a tuple of tensors, its random
    draws the same on every call."""

    def __init__(self, inner: nn.Module, call: Callable | None, seed: int) -> None:
        super().__init__()
        self.inner, self.call, self.seed = inner, call, seed

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        with seeded(self.seed):
            outputs = self.inner(x) if self.call is None else self.call(self.inner, x)
        return tuple(t for t in tensors_of(outputs) if t.is_floating_point())

    @staticmethod
    def shown(name: str) -> str:
        """A parameter's name as the net's state dict has it."""
        return name.removeprefix("inner.").removeprefix("net.")


def _disagreeing(
    net: nn.Module, input_shape: Sequence[int], seed: int, names: Sequence[str]
) -> list[str]:
    """Which of the named tensors ("input" or a parameter) get a gradient unlike the numerical one
    on a batch of 2 random inputs drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    net = copy.deepcopy(net)
    with torch.no_grad():
        for parameter in net.parameters():
            shift = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(JITTER * shift.to(parameter.device))
    device = next(net.parameters(), torch.empty(0)).device
    _calibrate(net, torch.randn(8, *input_shape, dtype=torch.float64, generator=generator), device)
    x = torch.randn(2, *input_shape, dtype=torch.float64, generator=generator).to(device)
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


def _calibrate(net: nn.Module, x: Tensor, device: torch.device) -> None:
    """Batch norm's running statistics set from a batch of the check's random inputs: at init
    they are mean 0 and variance 1, which normalize nothing in eval mode, and a deep net's
    activations grow past what float64 differences resolve (a healthy Inception's logits: 1e6)."""
    norms = [m for m in net.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: one batch sets the statistics
    net.train()
    with torch.no_grad():
        net(x.to(device))
    net.eval()


def _with_parameter(net: nn.Module, name: str, x: Tensor) -> Callable[[Tensor], Tensor]:
    return lambda value: torch.func.functional_call(net, {name: value}, (x,))


def _gradcheck(function: Callable[[Tensor], Tensor | tuple[Tensor, ...]], tensor: Tensor) -> bool:
    """Whether autograd's gradient of `function` at `tensor` agrees with finite differences, on one
    random projection of the Jacobian (the fast mode of `torch.autograd.gradcheck`, Chen and Wang
    2022): for random unit vectors u (input) and v (outputs), v·J·u by backpropagation against
    v·(f(t + eps·u) - f(t - eps·u)) / (2 eps), at the steps of STEPS in turn. A wrong backward
    shows in a random projection; a CNN takes two forwards and one backward a step. Written out
    here because torch's own, on a disagreement, builds the whole Jacobian row by row for its
    error message: hours for a segmentation net."""
    generator = torch.Generator().manual_seed(0)
    u = _unit(tensor, generator)
    probe = tensor.detach().clone().requires_grad_(True)
    outputs = _floats(function(probe))
    v = [_unit(out, generator) for out in outputs]
    differentiable = [(out, w) for out, w in zip(outputs, v, strict=True) if out.requires_grad]
    if differentiable:
        (grad,) = torch.autograd.grad(
            [out for out, _ in differentiable],
            probe,
            [w for _, w in differentiable],
            allow_unused=True,
        )
        analytical = 0.0 if grad is None else float((grad * u).sum())
    else:
        analytical = 0.0
    for step in STEPS:  # a kink within the step: a smaller one steps over it
        with torch.no_grad():
            plus = _floats(function(tensor.detach() + step * u))
            minus = _floats(function(tensor.detach() - step * u))
        numerical = sum(
            float(((a - b) * w).sum()) for a, b, w in zip(plus, minus, v, strict=True)
        ) / (2 * step)
        if abs(analytical - numerical) <= ATOL + RTOL * abs(numerical):
            return True
    return False


def _unit(tensor: Tensor, generator: torch.Generator) -> Tensor:
    """A random direction of the tensor's shape, of norm 1."""
    direction = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
    return (direction / direction.norm().clamp_min(1e-30)).to(tensor.device)


def _floats(outputs: Any) -> list[Tensor]:
    return [t for t in tensors_of(outputs) if t.is_floating_point()]
