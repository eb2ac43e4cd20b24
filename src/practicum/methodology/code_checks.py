"""The sanity checks that see the code (`debug=checks`, after the five of checks.py): each names a
bug that trains without an error and only shows as a poor curve, with the layer it lives in.

| check                | fails when                                                              |
|----------------------|-------------------------------------------------------------------------|
| probabilities_output | every example's scores are >= 0 and sum to 1 (a binary head's come out  |
|                      | of a sigmoid), while the loss expects logits                            |
| parameters_learn     | a parameter is frozen without the net declaring it, trainable but in no |
|                      | optimizer, or has a None or zero gradient after a training step         |
| dead_units           | more than 90% of a layer's units are dead (ReLU input <= 0 for every    |
|                      | example at every position) or saturated (sigmoid/tanh beyond 0.99 of    |
|                      | their range for most values), on 64 examples, at init or after the      |
|                      | overfit run                                                             |
| deterministic_eval   | two eval passes on one batch differ, and the net does not declare       |
|                      | samples_on_purpose                                                      |
| input_scale          | an input feature's |mean| or std is beyond 100 (or all are below 1e-3)  |

code_facts.py measures; this module turns the measurements into results. It also holds the
input-independence check of what is not a classifier (checks.py runs the classifier's).
"""

from __future__ import annotations

import copy
import math
from itertools import islice
from typing import Any

import torch
from torch import Tensor

from practicum.config import ChecksConfig
from practicum.methodology.check_table import CheckResult
from practicum.methodology.code_facts import (
    CodeFacts,
    first_facts,
    gradient_facts,
    optimized_parameters,
)
from practicum.methodology.output_facts import SCALE_FLOOR, SCALE_LIMIT
from practicum.methodology.unit_probe import (
    MOST,
    ProbePass,
    count,
    gather,
    own_random_state,
    probe_pass,
    seeded,
    tensors_of,
)


def run(
    task: Any, datamodule: Any, settings: ChecksConfig, trained: Any = None
) -> list[CheckResult]:
    """The five code checks on the first training batches (`trained`: the copy the overfit check
    trained, whose units are counted again)."""
    device = next(task.net.parameters()).device
    batches = [to_device(b, device) for b in _batches(datamodule, task, settings.units_examples)]
    inputs = gather([task.probe_inputs(b) for b in batches])
    optimized = optimized_ids(task)
    facts, first = first_facts(task, inputs, optimized, datamodule)
    after = probe_pass(trained, inputs) if trained is not None else None
    return [
        probabilities_output(task, facts, first),
        parameters_learn(task, batches[0], facts, settings.seed),
        dead_units(first, after, count(inputs)),
        deterministic_eval(task, facts),
        input_scale(facts),
    ]


def probabilities_output(task: Any, facts: CodeFacts, first: ProbePass) -> CheckResult:
    kind = getattr(task, "score_kind", None)
    if kind is None:
        why = f"{type(task).__name__}'s outputs are not scores a loss squashes (detections)"
        return CheckResult("probabilities_output", "skip", math.nan, "n/a", why)
    scores = first.scores
    share = 0.0
    if kind == "logits" and isinstance(scores, Tensor) and scores.ndim >= 2:
        rows = (scores.min(dim=1).values >= 0) & ((scores.sum(dim=1) - 1).abs() <= 1e-3)
        share = rows.float().mean().item()
    if facts.probabilities:
        share = 1.0
    loss = "the cross-entropy" if kind == "logits" else "the binary cross-entropy"
    if facts.probabilities:
        detail = (
            f"{facts.output_layer or 'the output'} gives probabilities ({facts.probabilities}) "
            f"but {loss} expects logits and squashes them again: remove the final "
            "softmax/sigmoid"
        )
        return CheckResult("probabilities_output", "fail", share, "< 1", detail)
    detail = f"the scores {loss} reads are logits (made by {facts.output_layer or 'the net'})"
    return CheckResult("probabilities_output", "pass", share, "< 1", detail)


def parameters_learn(task: Any, batch: Any, facts: CodeFacts, seed: int) -> CheckResult:
    """Frozen and unoptimized parameters, then one training step on a copy: which gradients are
    None or zero."""
    trainee = copy.deepcopy(task)
    trainee.train()
    with own_random_state(trainee.net, seed):
        trainee.probe_loss(batch).backward()
    facts.no_gradient = gradient_facts(trainee.net, optimized_ids(trainee))
    problems = []
    if facts.frozen:
        problems.append(
            f"frozen without a declaration ({facts.frozen_share:.1%} of the values): "
            f"{', '.join(facts.frozen)}"
        )
    if facts.unoptimized:
        problems.append(f"in no optimizer: {', '.join(facts.unoptimized)}")
    if facts.no_gradient:
        problems.append(f"no gradient after a step: {', '.join(facts.no_gradient)}")
    named = len(facts.frozen) + len(facts.unoptimized) + len(facts.no_gradient)
    deliberate = f"; frozen on purpose: {', '.join(facts.deliberate)}" if facts.deliberate else ""
    detail = "; ".join(problems) if problems else "every parameter is trained and gets a gradient"
    return CheckResult(
        "parameters_learn",
        "fail" if problems else "pass",
        float(named),
        "0 modules",
        detail + deliberate,
    )


def dead_units(first: ProbePass, after: ProbePass | None, examples: int) -> CheckResult:
    if not first.layers:
        why = "no ReLU, sigmoid or tanh call in the net's forward"
        return CheckResult("dead_units", "skip", math.nan, "n/a", why)
    passes = [("at init", first)] + ([("after the overfit run", after)] if after else [])
    worst = [(when, p.worst()) for when, p in passes if p.worst() is not None]
    value = max(layer.share for _, layer in worst)
    parts = [f"{when}, {layer.describe()}" for when, layer in worst]
    detail = f"worst layer of {len(first.layers)} on {examples} examples: " + "; ".join(parts)
    status = "fail" if value > MOST else "pass"
    if status == "fail":
        detail += ": look at that layer's initialization and bias, and the scale of its input"
    return CheckResult("dead_units", status, value, f"<= {MOST:.0%} of a layer's units", detail)


def deterministic_eval(task: Any, facts: CodeFacts) -> CheckResult:
    if facts.samples_on_purpose:
        why = f"{type(task.net).__name__} declares samples_on_purpose: it samples by design"
        return CheckResult("deterministic_eval", "skip", math.nan, "n/a", why)
    if facts.random_eval is None:
        detail = "two eval passes on the same batch agree, call by call"
        return CheckResult("deterministic_eval", "pass", 0.0, "0 calls differ", detail)
    detail = (
        f"two eval passes on the same batch first differ at {facts.random_eval}: dropout left on "
        "(F.dropout without training=self.training) or sampling in forward; a net that samples "
        "by design declares samples_on_purpose"
    )
    return CheckResult("deterministic_eval", "fail", 1.0, "0 calls differ", detail)


def input_scale(facts: CodeFacts) -> CheckResult:
    threshold = f"{SCALE_FLOOR:g} to {SCALE_LIMIT:g}"
    if facts.input_scale is None:
        return CheckResult("input_scale", "skip", math.nan, threshold, "no floating-point inputs")
    scale = facts.input_scale
    detail = f"the largest |mean| or std of an input feature over the batch is {scale:.4g}"
    if facts.scale_fix is None:
        return CheckResult("input_scale", "pass", scale, threshold, detail)
    detail += f", far from unit scale: {facts.scale_fix}"
    return CheckResult("input_scale", "fail", scale, threshold, detail)


def zeroed_inputs(task: Any, batch: Any, seed: int = 0, per_example: bool = True) -> CheckResult:
    """What is not a classifier has no accuracy to compare, but what it makes of zeroed inputs must
    still differ from what it makes of real ones: its outputs in eval mode, or, where they are
    detections (empty on any input before training), its training loss."""
    inputs = task.probe_inputs(batch)
    if per_example:
        real = tensors_of(probe_pass(task, inputs, seed=seed).outputs)
        zero = tensors_of(probe_pass(task, zeroed(inputs), seed=seed).outputs)
        what = "outputs in eval mode"
    else:
        trainee = copy.deepcopy(task).train()
        real, zero = ([_loss(trainee, (x, *batch[1:]), seed)] for x in (batch[0], zeroed(batch[0])))
        what = "training loss"
    scale = max((t.abs().max().item() for t in real if t.numel()), default=0.0)
    gaps = [(a - b).abs().max().item() for a, b in zip(real, zero, strict=True) if a.numel()]
    shapes = [t.shape for t in real] != [t.shape for t in zero]
    change = 1.0 if shapes else max(gaps, default=0.0) / max(scale, 1e-12)
    same = ": the same, so the output does not depend on the input" if change == 0 else ""
    return CheckResult(
        "input_independent_baseline",
        "pass" if change > 0 else "fail",
        change,
        "> 0",
        f"largest change of the {what}, real against zeroed inputs, relative to its largest "
        f"value (no training: {type(task).__name__} is not a classifier){same}",
    )


def _loss(task: Any, batch: Any, seed: int) -> Tensor:
    with seeded(seed), torch.no_grad():
        return task.probe_loss(batch).detach()


def zeroed(inputs: Any) -> Any:
    """Inputs of the same shapes, all zero: a tensor, (padded, lengths), or a list of images."""
    if isinstance(inputs, list):
        return [torch.zeros_like(image) for image in inputs]
    if isinstance(inputs, tuple):  # (padded, lengths): the lengths stay
        return torch.zeros_like(inputs[0]), inputs[1]
    return torch.zeros_like(inputs)


# -- batches and optimizers -------------------------------------------------------------------


def _batches(datamodule: Any, task: Any, examples: int) -> list[Any]:
    """The first training batches, enough for `examples` examples (fewer if the split is smaller)."""
    found, seen = [], 0
    for batch in islice(datamodule.loader("train", shuffle=False), 1000):
        found.append(batch)
        seen += count(task.probe_inputs(batch))
        if seen >= examples:
            break
    return found


def optimized_ids(task: Any) -> set[int] | None:
    """The parameters the task's optimizers hold (None: built without an optimizer)."""
    spec, task.scheduler_spec = getattr(task, "scheduler_spec", {}), {}
    try:
        found = task.configure_optimizers()
    except RuntimeError:
        return None
    finally:
        task.scheduler_spec = spec
    if isinstance(found, dict):
        found = found["optimizer"]
    return optimized_parameters(found if isinstance(found, list | tuple) else [found])


def to_device(batch: Any, device: Any) -> Any:
    """A batch on the net's device: tensors anywhere in lists, tuples and dicts."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch
