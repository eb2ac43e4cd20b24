"""Facts about the code of a run that training alone does not show: measured cheaply on the first
batches of every run (callbacks.CodeFactsRecorder) and, at length, by `debug=checks`
(code_checks.py). Each fact that is present is a bug the curves would only blame on tuning:

- probabilities, not logits: the scores the loss reads are already a softmax (rows >= 0 that sum
  to 1) or, for a binary head, come out of a sigmoid; the loss squashes them a second time;
- parameters that do not learn: `requires_grad=False` without the net declaring the freeze
  (`frozen_on_purpose`), trainable tensors no optimizer holds (a plain list of layers, a tensor
  that is not an `nn.Parameter`), and parameters whose gradient is None or zero after a step;
- dead or saturated units (unit_probe.py): nearly all units of a layer off for every example;
- evaluation that is not deterministic: two eval passes on one batch differ (dropout left on,
  sampling in forward) and the net does not declare `samples_on_purpose`;
- inputs on the wrong scale: a feature of the batch the net sees has |mean| or std beyond
  SCALE_LIMIT (or every feature is nearly zero);
- an output that ignores its input, or mixes the examples of a batch (eval mode).

output_facts.py measures the outputs, unit_probe.py the units; this module the parameters, and
keeps the record (`CodeFacts`, summary.json's `code`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from practicum.methodology.output_facts import (
    dependence,
    input_scale,
    mixing_layer,
    normalization_key,
    probabilities,
    random_eval,
    scale_wrong,
)
from practicum.methodology.unit_probe import ProbePass, probe_pass

NAMED = 12  # names kept per list (a frozen backbone has hundreds of tensors)


@dataclass
class Defect:
    layer: str  # where: a module path, "the inputs", ...
    what: str  # the bug, in words
    fix: str  # what to do about it


@dataclass
class CodeFacts:
    """The code facts of one run (summary.json's `code`)."""

    net: str | None = None  # the net's class
    frozen: list[str] = field(default_factory=list)  # undeclared requires_grad=False, by module
    frozen_share: float = 0.0  # their share of the net's parameter values
    deliberate: list[str] = field(default_factory=list)  # frozen on purpose, by declared prefix
    unoptimized: list[str] = field(default_factory=list)  # trainable, but no optimizer holds them
    no_gradient: list[str] = field(default_factory=list)  # None or zero after the first step
    probabilities: str | None = None  # how the scores the loss reads look like probabilities
    output_layer: str | None = None  # the layer that made those scores
    ignores_input: bool = False
    mixing: float | None = None  # max |d output_0 / d input_j|, j != 0, in eval mode
    mixing_layer: str | None = None  # the first call whose row 0 depends on the other rows
    random_eval: str | None = None  # the first call whose eval result differs between passes
    samples_on_purpose: bool = False
    input_scale: float | None = None  # the largest |mean| or std of an input feature
    scale_fix: str | None = None  # the key that normalizes the inputs
    # the worst layer of units, and any other with most units off (unit_probe.LayerUnits): at
    # the first epoch, and at the end of training
    units_first: list[dict[str, Any]] = field(default_factory=list)
    units_last: list[dict[str, Any]] = field(default_factory=list)
    examples: int = 0  # in the batch the units were counted on
    seconds: float = 0.0  # what recording them cost

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> CodeFacts | None:
        if not values:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


# -- parameters ---------------------------------------------------------------------------------


def declared_frozen(net: nn.Module) -> tuple[str, ...]:
    """The module paths the net (or any module in it) declares frozen on purpose."""
    prefixes = []
    for path, module in net.named_modules():
        for prefix in getattr(module, "frozen_on_purpose", ()) or ():
            prefixes.append(f"{path}.{prefix}" if path else str(prefix))
    return tuple(prefixes)


def samples_by_design(net: nn.Module) -> bool:
    return any(getattr(module, "samples_on_purpose", False) for module in net.modules())


def parameter_facts(net: nn.Module, optimized: set[int] | None, facts: CodeFacts) -> None:
    """Frozen parameters (deliberate or not) and those no optimizer holds, into `facts`."""
    facts.net = type(net).__name__
    declared = declared_frozen(net)
    frozen, deliberate, size, frozen_size = [], set(), 0, 0
    for name, param in net.named_parameters():
        size += param.numel()
        if param.requires_grad:
            continue
        prefix = next((p for p in declared if name == p or name.startswith(p + ".")), None)
        if prefix is not None:
            deliberate.add(prefix)
        else:
            frozen.append(name)
            frozen_size += param.numel()
    facts.frozen = _modules(frozen)
    facts.frozen_share = frozen_size / max(size, 1)
    facts.deliberate = sorted(deliberate)
    hidden = [name for name, _ in unregistered(net)]
    if optimized is not None:
        hidden += [
            name
            for name, param in net.named_parameters()
            if param.requires_grad and id(param) not in optimized
        ]
    facts.unoptimized = _modules(hidden)


def unregistered(net: nn.Module) -> Iterable[tuple[str, str]]:
    """Trainable tensors torch does not see as the net's parameters: layers in a plain list or
    dict, and tensors that require grad without being an `nn.Parameter`."""
    for path, module in net.named_modules():
        for attribute, value in vars(module).items():
            if attribute.startswith("_") and isinstance(value, dict):
                continue  # torch's own registries (_modules, _parameters, hooks)
            where = f"{path}.{attribute}" if path else attribute
            items = (
                value.items()
                if isinstance(value, dict)
                else enumerate(value)
                if isinstance(value, list | tuple)
                else None
            )
            if items is None:
                if isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
                    yield where, "a tensor that requires grad but is not an nn.Parameter"
                continue
            for key, item in items:
                if isinstance(item, nn.Module) and any(True for _ in item.parameters()):
                    yield f"{where}[{key!r}]", "a layer in a plain list or dict: nn.ModuleList"


def optimized_parameters(optimizers: Iterable[Any]) -> set[int]:
    return {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}


def gradient_facts(net: nn.Module, optimized: set[int] | None) -> list[str]:
    """The modules of trainable, optimized parameters whose gradient is None or zero."""
    missing = [
        name
        for name, param in net.named_parameters()
        if param.requires_grad
        and (optimized is None or id(param) in optimized)
        and (param.grad is None or not bool(param.grad.any()))
    ]
    return _modules(missing)


def _modules(names: list[str]) -> list[str]:
    """Parameter names as their modules (`features.0.weight` -> `features.0`), each once."""
    modules = dict.fromkeys(name.rpartition(".")[0] or name for name in names)
    found = list(modules)
    return found[:NAMED] + ([f"... {len(found) - NAMED} more"] if len(found) > NAMED else [])


# -- recording ----------------------------------------------------------------------------------


def first_facts(
    task: Any, inputs: Any, optimized: set[int] | None, datamodule: Any = None
) -> tuple[CodeFacts, ProbePass]:
    """The facts one batch of inputs shows before any training step, and the watched pass (its
    unit counts too)."""
    net, facts = task.net, CodeFacts()
    parameter_facts(net, optimized, facts)
    first = probe_pass(task, inputs, fingerprints=True, seed=0)
    if not facts.unoptimized:  # weights made in forward, or kept where nothing registers them
        facts.unoptimized = [f"{call} (weights no module owns)" for call in first.unowned]
    facts.probabilities = probabilities(first, getattr(task, "score_kind", None))
    facts.output_layer = first.scores_by
    facts.samples_on_purpose = samples_by_design(net)
    if not facts.samples_on_purpose:
        facts.random_eval = random_eval(first, probe_pass(task, inputs, fingerprints=True, seed=1))
    facts.input_scale = input_scale(inputs)
    if scale_wrong(facts.input_scale):
        facts.scale_fix = normalization_key(datamodule)
    found = dependence(task, inputs)
    if found is not None:
        own, facts.mixing = found
        facts.ignores_input = own == 0 and facts.mixing == 0
        if facts.mixing > 1e-12:
            facts.mixing_layer = mixing_layer(task, inputs)
    return facts, first
