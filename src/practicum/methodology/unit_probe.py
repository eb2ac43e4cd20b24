"""One forward pass of a net, watched through torch's function calls (a `TorchFunctionMode`), so
functional calls (`F.relu`, `torch.sigmoid`, `x.tanh()`) count as much as modules do:

- units: per call of a ReLU, the units whose input is <= 0 for every example at every position
  (dead: the ReLU outputs zero there, and passes no gradient); per call of a sigmoid or tanh, the
  units beyond 0.99 of the function's range for most (more than half) of the examples and
  positions (saturated: their gradient is nearly zero there). A unit is a channel (dim 1) after a convolution, a
  feature (the last dim) after a linear layer. An activation whose result is the net's output
  (a generator's final tanh, whose background pixels sit at -1 by design) is not counted;
- who made what: the layer whose call produced each tensor, so a result names its layer;
- weights no module owns: a call given a trainable leaf tensor that is not one of the net's
  parameters (a layer built inside forward, a tensor that is not an `nn.Parameter`);
- fingerprints: a number per call result, so the first call whose result differs between two
  passes on the same inputs names where randomness enters; or a number per call for the first
  example's row only, so the first call whose row 0 changes when only the other examples change
  names where examples mix.

Layers are named by module path, as `state_dict` names them: `features.2 (ReLU)` for a module,
`relu in Net.forward` for a functional call, each after the layer that produced its input
(`fc1 (Linear) → relu in Net.forward`).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

RELU = frozenset({"relu", "relu_", "relu6"})
# a sigmoid beyond 0.99 of its range (within 0.005 of 0 or 1) has |input| > 2 atanh(0.99), a tanh
# |input| > atanh(0.99)
EDGES = {
    "sigmoid": 2 * math.atanh(0.99),
    "sigmoid_": 2 * math.atanh(0.99),
    "tanh": math.atanh(0.99),
    "tanh_": math.atanh(0.99),
}
# a layer with more than this share of its units dead or saturated fails: a layer whose inputs
# barely vary between examples at init (a detector's box head) keeps about half its units of one
# sign for every example by chance, so "most" is nearly all
MOST = 0.9
SATURATED = 0.5  # a sigmoid or tanh unit beyond 0.99 of its range for more of its values
NAMED = 12  # layers kept in a record, worst first
CONVOLUTIONS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"})


@dataclass
class LayerUnits:
    """The units of one activation layer that are dead (ReLU) or saturated (sigmoid, tanh)."""

    layer: str
    kind: str  # "dead" or "saturated"
    units: int
    off: int  # dead or saturated units
    examples: int
    call: str = ""  # the activation call itself (the layer names the one before it too)

    @property
    def share(self) -> float:
        return self.off / max(self.units, 1)

    def describe(self) -> str:
        return f"{self.layer}: {self.off} of {self.units} units {self.kind} ({self.share:.0%})"


@dataclass
class ProbePass:
    """What one watched forward pass saw."""

    outputs: Any
    scores: Tensor | None
    layers: list[LayerUnits] = field(default_factory=list)
    calls: list[tuple[str, float]] = field(default_factory=list)  # (layer, fingerprint)
    unowned: list[str] = field(default_factory=list)  # calls given weights the net does not own
    scores_by: str | None = None  # the layer that produced the scores

    def worst(self) -> LayerUnits | None:
        return max(self.layers, key=lambda layer: layer.share, default=None)


class UnitProbe(TorchFunctionMode):
    """Records, for each function call of a forward, what the module docstring lists."""

    def __init__(self, net: nn.Module, fingerprints: bool = False, rows: int = 0) -> None:
        super().__init__()
        self.fingerprints = fingerprints
        self.rows = rows  # > 0: fingerprint row 0 of results with this many rows, nothing else
        self.stack: list[tuple[str, nn.Module]] = []
        self.made_by: dict[int, tuple[weakref.ref, str]] = {}
        self.layers: dict[str, LayerUnits] = {}
        self.calls: list[tuple[str, float]] = []
        self.unit_dim = 1  # dim 1 after a convolution, the last dim after a linear layer
        self.net = net
        self.owned = {id(p) for p in net.parameters()}
        self.unowned: list[str] = []  # calls given trainable tensors the net does not own

    # -- modules: which one runs, and which made a tensor ------------------------------------
    @contextmanager
    def watching(self) -> Iterator[UnitProbe]:
        with ExitStack() as hooks:
            for name, module in self.net.named_modules():
                pre = module.register_forward_pre_hook(self._enter(name, module))
                post = module.register_forward_hook(self._leave)
                hooks.callback(pre.remove)
                hooks.callback(post.remove)
            with self:
                yield self

    def _enter(self, name: str, module: nn.Module) -> Callable[..., None]:
        def enter(_module: nn.Module, _args: Any) -> None:
            self.stack.append((name, module))

        return enter

    def _leave(self, module: nn.Module, _args: Any, output: Any) -> None:
        name, _ = self.stack.pop()
        for tensor in tensors_of(output):
            self._made(tensor, self._module_label(name, module))

    def _made(self, tensor: Tensor, label: str) -> None:
        # the innermost maker wins: a module's hook runs after the calls inside it
        if self.maker(tensor) is None:
            self.made_by[id(tensor)] = (weakref.ref(tensor), label)

    def maker(self, tensor: Any) -> str | None:
        found = self.made_by.get(id(tensor)) if isinstance(tensor, Tensor) else None
        return found[1] if found is not None and found[0]() is tensor else None

    @staticmethod
    def _module_label(name: str, module: nn.Module) -> str:
        return f"{name or 'net'} ({type(module).__name__})"

    def _call_label(self, function: str) -> str:
        """A call inside a leaf module is that module; one in a module's own forward is functional."""
        net = type(self.net).__name__
        if not self.stack:  # a method of the net other than forward (a GAN's discriminate)
            return f"{function} in {net}"
        name, module = self.stack[-1]
        if next(module.children(), None) is None:
            return self._module_label(name, module)
        return f"{function} in {name or net}.forward"

    # -- function calls -------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        first = args[0] if args else None
        label = self._call_label(name)
        watched = name in RELU or name in EDGES
        if watched and isinstance(first, Tensor) and first.ndim >= 2 and first.is_floating_point():
            self._units(name, first, label)
        for arg in (*args, *kwargs.values()):
            foreign = isinstance(arg, Tensor) and arg.requires_grad and arg.is_leaf
            if foreign and id(arg) not in self.owned and label not in self.unowned:
                self.unowned.append(label)
        result = func(*args, **kwargs)
        if name == "linear":
            self.unit_dim = -1
        elif name in CONVOLUTIONS:
            self.unit_dim = 1
        for tensor in tensors_of(result):
            self._made(tensor, label)
            if self.fingerprints and tensor.is_floating_point():
                self._fingerprint(label, tensor)
        return result

    def _fingerprint(self, label: str, tensor: Tensor) -> None:
        if not self.rows:
            self.calls.append((label, float(tensor.detach().double().sum())))
        elif tensor.ndim >= 1 and len(tensor) == self.rows:
            self.calls.append((label, float(tensor[0].detach().double().sum())))

    def _units(self, function: str, x: Tensor, label: str) -> None:
        """Count the units of this call that are off for every example at every position; the
        input is read before the call, so an in-place ReLU cannot hide it."""
        dim = self.unit_dim if x.ndim > 2 else 1
        values = x.detach().movedim(dim, 0).reshape(x.shape[dim], -1)
        if function in RELU:
            off, kind = (values <= 0).all(dim=1), "dead"
        else:
            beyond = (values.abs() > EDGES[function]).float().mean(dim=1)
            off, kind = beyond > SATURATED, "saturated"
        maker = self.maker(x)
        layer = f"{maker} → {label}" if maker and maker != label else label
        found = self.layers.get(layer)
        if found is not None and found.units == len(off):
            # the same layer again (a recurrent step, a shared activation): off every time
            found.off = min(found.off, int(off.sum()))
            return
        self.layers[layer] = LayerUnits(layer, kind, len(off), int(off.sum()), len(x), label)


def tensors_of(value: Any) -> list[Tensor]:
    """The tensors of a result: itself, or those of a tuple, list or dict (detections)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in tensors_of(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors_of(item)]
    return []


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """The net in eval mode, every module's own mode given back afterwards (no side effects: a
    frozen backbone's batch norm that stays in eval mode stays so)."""
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def own_random_state(net: nn.Module, seed: int | None = None) -> Iterator[None]:
    """Random numbers drawn inside (a net that samples) leave the caller's random state as it was."""
    device = next(net.parameters(), torch.empty(0)).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch inside the block and give the caller's random state back afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def probe_pass(
    task: Any, inputs: Any, fingerprints: bool = False, seed: int | None = 0, rows: int = 0
) -> ProbePass:
    """One forward of `task.probe` in eval mode, without gradients, watched."""
    net = task.net
    probe = UnitProbe(net, fingerprints, rows)
    with eval_mode(net), own_random_state(net, seed), torch.no_grad(), probe.watching():
        outputs, scores = task.probe(inputs)
    made_outputs = {probe.maker(t) for t in tensors_of(outputs)}
    return ProbePass(
        outputs=outputs,
        scores=scores,
        layers=[u for u in probe.layers.values() if u.call not in made_outputs],
        calls=probe.calls,
        unowned=probe.unowned,
        scores_by=probe.maker(scores),
    )


def first_difference(a: ProbePass, b: ProbePass, tolerance: float = 1e-5) -> str | None:
    """The first call whose result differs between two passes on the same inputs, if any."""
    for (layer, x), (other, y) in zip(a.calls, b.calls, strict=False):
        if layer != other:  # the passes took different paths from here
            return None
        if abs(x - y) > tolerance * (1 + abs(x)):
            return layer
    return None


def layers_off(probe: ProbePass) -> list[dict[str, Any]]:
    """The layers of a pass with most of their units dead or saturated, worst first; at least the
    worst layer, whatever its share (the fraction a run records)."""
    found = sorted(probe.layers, key=lambda u: -u.share)
    return [asdict(u) for i, u in enumerate(found[:NAMED]) if i == 0 or u.share > MOST]


def units_line(layers: list[dict[str, Any]]) -> str:
    return "; ".join(LayerUnits(**layer).describe() for layer in layers)


def gather(parts: list[Any]) -> Any:
    """Several batches' inputs as one: tensors joined on the batch axis, lists of images chained,
    (padded, lengths) pairs joined part by part."""
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(parts)
    if isinstance(first, tuple):
        return tuple(gather([p[i] for p in parts]) for i in range(len(first)))
    return [item for part in parts for item in part]


def count(inputs: Any) -> int:
    values = inputs[0] if isinstance(inputs, tuple) else inputs
    return len(values)
