"""Ranges of constructor arguments, declared where the argument is declared.

    def __init__(self, hidden_units: Annotated[int, PositiveInt] = 128,
                 dropout: Annotated[float, Fraction] = 0.2) -> None:

checker.py reads these from the signature of each `_target_` in the config and reports a value out
of range as one line before anything is built. Plain type hints (int, float, str, ...) are checked
too; a marker adds the range. Imports nothing heavy: a config's schema may use the markers too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Constraint:
    """A range: `holds(value)` is True when the value is allowed; `rule` says which values are."""

    rule: str  # "must be a number > 0"
    holds: Callable[[Any], bool]
    example: str  # a good value, for the message when the declared default cannot serve

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None  # a null is the type's business (Optional or not), not the range's
        return None if self.holds(value) else self.rule


def _finite(value: Any, test: Callable[[float], bool]) -> bool:
    x = _number(value)
    return x is not None and math.isfinite(x) and test(x)


def _whole(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


Positive = Constraint("must be a number > 0", lambda v: _finite(v, lambda x: x > 0), "1e-3")
NonNegative = Constraint("must be a number >= 0", lambda v: _finite(v, lambda x: x >= 0), "1e-4")
# [0, 1): dropout, label smoothing, momentum
Fraction = Constraint("must be in [0, 1)", lambda v: _finite(v, lambda x: 0 <= x < 1), "0.1")
# (0, 1): the share of a split
OpenFraction = Constraint("must be in (0, 1)", lambda v: _finite(v, lambda x: 0 < x < 1), "0.15")
# (0, 1]: a target or tolerance that may be reached exactly
UpToOne = Constraint("must be in (0, 1]", lambda v: _finite(v, lambda x: 0 < x <= 1), "0.5")
PositiveInt = Constraint("must be a whole number >= 1", lambda v: _whole(v, 1), "64")
NonNegativeInt = Constraint("must be a whole number >= 0", lambda v: _whole(v, 0), "0")

# a number of batches (>= 1) or a share of them (0, 1]: Lightning's limit_*_batches, val_check_interval
Batches = Constraint(
    "must be a whole number of batches >= 1 or a share of them in (0, 1]",
    lambda v: _whole(v, 1) or (isinstance(v, float) and _finite(v, lambda x: 0 < x <= 1)),
    "1.0",
)

# where pretrained weights come from: a saved state dict's path, or a torchvision weights name
# (ResNet18_Weights.IMAGENET1K_V1) whose file is in the torch hub cache
Weights = Constraint(
    "must be the path of a saved state dict or a torchvision weights name",
    lambda v: isinstance(v, str) and bool(v.strip()),
    "/path/to/weights.pth",
)


# what numpy and Lightning's seed_everything accept
SEED = Constraint(
    "must be a whole number from 0 to 4294967295", lambda v: _whole(v, 0) and v < 2**32, "42"
)


def at_least(low: int) -> Constraint:
    return Constraint(f"must be a whole number >= {low}", lambda v: _whole(v, low), str(low))


def one_of(*choices: Any) -> Constraint:
    listed = ", ".join(str(c) for c in choices)
    return Constraint(f"must be one of {listed}", lambda v: v in choices, str(choices[0]))


# a list of whole numbers >= 1: channels per block, anchor sizes
PositiveInts = Constraint(
    "must be a list of whole numbers >= 1",
    lambda v: isinstance(v, list | tuple) and all(_whole(x, 1) for x in v),
    "[32, 64]",
)


def _increasing_shares(value: Any) -> bool:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return False
    shares = [_number(v) for v in value]
    return (
        len(shares) >= 2
        and all(x is not None and 0 < x <= 1 for x in shares)
        and all(a < b for a, b in zip(shares[:-1], shares[1:], strict=True))
    )


# the shares of a training split a learning curve trains on, smallest first
IncreasingShares = Constraint(
    "must be two or more increasing numbers in (0, 1]",
    _increasing_shares,
    "[0.125,0.25,0.5,1.0]",
)


def rule(constraint: Constraint) -> dict[str, Constraint]:
    """`field(default=..., metadata=rule(Positive))`: the range of a field of a config schema."""
    return {"constraint": constraint}
