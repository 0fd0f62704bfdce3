"""The search space: a YAML-friendly mapping checked without Optuna, numpy or pandas.

A recipe's search space is validated before any step runs (and on a machine
without the ``tune`` extra), so this module imports nothing heavy::

    max_depth:     {type: int, low: 2, high: 8}
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    max_iter:      {type: categorical, choices: [100, 200]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loopml.kernel.exceptions import SpecError

__all__ = ["ParamSpec", "parse_space"]

_SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "int": ("type", "low", "high", "step", "log"),
    "float": ("type", "low", "high", "step", "log"),
    "categorical": ("type", "choices"),
}


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: an int or float range, or a list of choices."""

    name: str
    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_distribution(self) -> Any:
        """The Optuna distribution (imports optuna)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))  # type: ignore[arg-type]
        if self.type == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)  # type: ignore[arg-type]
        return CategoricalDistribution(list(self.choices))


def _spec_error(name: str, message: str, key: str) -> SpecError:
    return SpecError(f"search space parameter {name!r}: {message}", field=f"space.{name}.{key}", rule="space")


def _number(name: str, spec: Mapping[str, Any], key: str, kind: str) -> float:
    value = spec.get(key)
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise _spec_error(name, f"{key!r} must be {'an integer' if kind == 'int' else 'a number'}; got {value!r}", key)
    return value  # type: ignore[return-value]


def parse_space(space: Mapping[str, Any]) -> dict[str, ParamSpec]:
    """Check a YAML-friendly search space and return one :class:`ParamSpec` per parameter.

    Raises:
        SpecError: naming the parameter, the key and the allowed values.
    """
    if not isinstance(space, Mapping) or not space:
        raise SpecError(
            "search space must be a non-empty mapping of parameter name to spec, e.g. "
            "{'max_depth': {'type': 'int', 'low': 2, 'high': 8}}",
            field="space",
            rule="space",
        )
    out: dict[str, ParamSpec] = {}
    for name, spec in space.items():
        if not isinstance(spec, Mapping):
            raise _spec_error(str(name), f"spec must be a mapping with a 'type'; got {spec!r}", "type")
        kind = spec.get("type")
        if kind not in _SPEC_KEYS:
            raise _spec_error(str(name), f"type {kind!r} is unknown; allowed: {', '.join(_SPEC_KEYS)}", "type")
        unknown = sorted(set(spec) - set(_SPEC_KEYS[kind]))
        if unknown:
            raise _spec_error(
                str(name),
                f"unknown key(s) {', '.join(map(repr, unknown))} for type {kind!r}; "
                f"allowed: {', '.join(_SPEC_KEYS[kind])}",
                unknown[0],
            )
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
                raise _spec_error(str(name), f"'choices' must be a non-empty list; got {choices!r}", "choices")
            bad = [c for c in choices if not (c is None or isinstance(c, (bool, int, float, str)))]
            if bad:
                raise _spec_error(
                    str(name), f"choices must be null, bool, int, float or string; got {bad[0]!r}", "choices"
                )
            out[str(name)] = ParamSpec(name=str(name), type="categorical", choices=tuple(choices))
            continue
        low = _number(str(name), spec, "low", kind)
        high = _number(str(name), spec, "high", kind)
        if low > high:
            raise _spec_error(str(name), f"'low' ({low}) must not exceed 'high' ({high})", "low")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise _spec_error(str(name), f"'log' must be true or false; got {log!r}", "log")
        if log and low <= 0:
            raise _spec_error(str(name), f"'log': true needs 'low' > 0; got {low}", "log")
        step = spec.get("step")
        if step is not None:
            step = _number(str(name), spec, "step", kind)
            if step <= 0:
                raise _spec_error(str(name), f"'step' must be > 0; got {step}", "step")
            if log:
                raise _spec_error(str(name), "'step' and 'log': true cannot be combined", "step")
        out[str(name)] = ParamSpec(name=str(name), type=kind, low=low, high=high, log=log, step=step)
    return out
