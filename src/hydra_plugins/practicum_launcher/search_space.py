"""A search's space: `hydra.sweeper.params` and the command line's sweeps as Optuna
distributions, the overrides every trial shares, and a trial's values as overrides again.

`choice(...)` is categorical; `interval(a, b)` is uniform, `tag(log, interval(a, b))` log-uniform
(whole numbers stay whole); `range(a, b)` of whole numbers is an integer distribution, any other
range its list of values. Read with Hydra's own override parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer

from practicum.errors import UserError


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # name -> Optuna distribution
    fixed: list[str] = field(default_factory=list)  # overrides every trial gets as they are

    @classmethod
    def parse(cls, params: dict[str, Any] | None, arguments: list[str]) -> SearchSpace:
        """The space of `hydra.sweeper.params` then the command line; a later key replaces an
        earlier one, as in Hydra (the command line's refusal of a pinned key comes before)."""
        lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
        space = cls()
        fixed: dict[str, str] = {}
        for override in OverridesParser.create().parse_overrides(lines):
            key = override.get_key_element()
            if override.is_delete() or not override.is_sweep_override():
                space.distributions.pop(key, None)
                fixed[key] = str(override.input_line)
                continue
            fixed.pop(key, None)
            space.distributions[key] = distribution(override)
        space.fixed = list(fixed.values())
        return space

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's command line: its sampled values, then the fixed overrides."""
        return [f"{name}={value}" for name, value in params.items()] + self.fixed

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each dimension, for Optuna's grid sampler (discrete spaces only)."""
        from optuna.distributions import CategoricalDistribution, IntDistribution

        values = {}
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                values[name] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                values[name] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise UserError(
                    f"{name}: a grid takes listed values, not an interval: write choice(...)"
                )
        return values


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        name = override.get_key_element()
        if not sweep.start < sweep.end:
            raise UserError(
                f"{override.input_line}: an interval goes from low to high; write "
                f"{name}=interval({sweep.end},{sweep.start})"
                if sweep.start > sweep.end
                else f"{override.input_line}: an interval of one value; list it or widen it"
            )
        if log and sweep.start <= 0:
            raise UserError(
                f"{override.input_line}: a log interval needs low > 0 (for example "
                f"{name}=tag(log,interval(1e-5,{sweep.end})))"
            )
        whole = isinstance(sweep.start, int) and isinstance(sweep.end, int)
        kind = IntDistribution if whole else FloatDistribution
        return kind(sweep.start, sweep.end, log=log)
    if isinstance(sweep, RangeSweep) and not (sweep.shuffle or sweep.transformers):
        values = sweep.range()
        if isinstance(values, range) and len(values) > 0:
            low, high = sorted((values[0], values[-1]))
            return IntDistribution(low, high, step=abs(values.step))
    return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
