"""Which code facts (code_facts.py) are defects, said with their layer and their fix, and the case
they decide: `code_defect`.

A run that misses its goal with a defect present gets the case `code_defect` before any case the
curves would suggest (they were measured on the bug): its first remedy is the fix, never
capacity, the learning rate or more epochs, and it sets `stop`, so the autopilot stops on it with
the layer named. Units that died by the end of a diverged run are the blow-up's doing, not a
defect of the code.
"""

from __future__ import annotations

from practicum.methodology.code_facts import CodeFacts, Defect
from practicum.methodology.data_audit import DataCase
from practicum.methodology.output_facts import scale_wrong
from practicum.methodology.unit_probe import MOST, units_line

CASE = "code_defect"


def defects(facts: CodeFacts | None, diverged: bool = False) -> list[Defect]:
    """The defects the facts show, the most telling first."""
    if facts is None:
        return []
    found = []
    if facts.probabilities:
        found.append(
            Defect(
                facts.output_layer or "the output layer",
                f"the net outputs probabilities ({facts.probabilities}) where the loss expects "
                "logits, so it squashes them a second time",
                "remove the final softmax/sigmoid: the loss applies it itself",
            )
        )
    if facts.unoptimized:
        found.append(
            Defect(
                ", ".join(facts.unoptimized),
                "trainable parameters that no optimizer updates",
                "register them (nn.ModuleList / nn.ModuleDict, nn.Parameter) so the optimizer "
                "gets them",
            )
        )
    if facts.frozen:
        found.append(
            Defect(
                ", ".join(facts.frozen),
                f"parameters frozen (requires_grad=False, {facts.frozen_share:.0%} of the "
                "values) without the net declaring it",
                "unfreeze them, or declare the freeze: frozen_on_purpose on the net "
                "(docs/extending.md)",
            )
        )
    if scale_wrong(facts.input_scale):
        found.append(
            Defect(
                "the inputs",
                f"an input feature has |mean| or std {facts.input_scale:.4g}, far from unit scale",
                facts.scale_fix or "normalize the inputs",
            )
        )
    for when, measured in (
        ("at the first epoch", facts.units_first),
        ("at the end", facts.units_last),
    ):
        layers = [layer for layer in measured if layer["off"] > MOST * layer["units"]]
        if layers and not (diverged and when == "at the end"):
            found.append(
                Defect(
                    layers[0]["layer"],
                    f"nearly all units of a layer are dead or saturated {when}: "
                    f"{units_line(layers[:3])}",
                    "look at that layer's initialization and bias, and the scale of its input",
                )
            )
            break
    if facts.ignores_input:
        found.append(
            Defect(
                f"{facts.net or 'the net'}.forward",
                "the output does not depend on the input",
                "pass the input through the layers (a forward that returns a constant, or "
                "detaches the input?)",
            )
        )
    if facts.mixing is not None and facts.mixing > 1e-12:
        found.append(
            Defect(
                facts.mixing_layer or "the net's forward",
                f"in eval mode one example's output depends on the other examples of its batch "
                f"(gradient {facts.mixing:.3g})",
                "keep the batch axis apart: a reshape or view that folds it into the features, "
                "or a statistic over dim 0",
            )
        )
    if facts.no_gradient:
        found.append(
            Defect(
                ", ".join(facts.no_gradient),
                "parameters whose gradient is None or zero after a training step",
                "make them reach the loss (unused layers, a detach, dead units in front)",
            )
        )
    if facts.random_eval and not facts.samples_on_purpose:
        found.append(
            Defect(
                facts.random_eval,
                "evaluation is not deterministic: two eval passes on one batch differ there",
                "respect self.training (F.dropout(x, training=self.training)), or declare "
                "samples_on_purpose on a net that samples by design",
            )
        )
    return found


def code_case(facts: CodeFacts | None, verdict: str, diverged: bool) -> DataCase | None:
    """`code_defect` when the run misses its goal with a defect present."""
    found = defects(facts, diverged)
    if not found or verdict == "goal_met":
        return None
    first = found[0]
    return DataCase(
        CASE,
        f"A defect in the code: {first.what} ({first.layer}).",
        f"A code defect in {first.layer}: {first.what}; {first.fix}. No tuning helps before that.",
    )


def code_evidence(facts: CodeFacts | None, diverged: bool = False) -> list[str]:
    """The evidence lines of the code facts: each defect, and the freezes declared."""
    if facts is None:
        return []
    lines = [f"Code: {d.what} in {d.layer}: {d.fix}." for d in defects(facts, diverged)]
    if facts.deliberate:
        lines.append(f"Frozen on purpose (declared by the net): {', '.join(facts.deliberate)}.")
    return lines
