"""Promotion gates: rules a candidate model's evaluation must pass.

Rules come from YAML-friendly strings and mappings; four kinds::

    "roc_auc >= 0.80"                                      threshold (>=, >, <=, <)
    {metric: roc_auc, min: 0.8}   {metric: rmse, max: 3}   threshold (inclusive)
    "f1[season] >= 0.6"   {metric: f1, min: 0.6, slice: season}
                                                           every slice of a column
    {metric: roc_auc, max_regression: 0.01, relative: false, direction: higher}
                                                           change vs the champion
    {fairness: season, metric: recall, max_gap: 0.1}       max - min across slices

Any mapping may carry ``name``. The candidate and the champion must be
evaluated on the same test rows (their ``data_digest`` is compared). A rule
the candidate cannot be measured on fails (fail closed); a change rule with
no champion, or a slice/fairness rule with no slice large enough, is skipped
with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from loopml.evaluate import METRICS
from loopml.kernel.exceptions import GateFailed, SpecError, ValidationError

if TYPE_CHECKING:  # numpy loads with evaluations, not with the gate definitions
    from loopml.evaluate import Evaluation

__all__ = [
    "ChangeRule",
    "FairnessRule",
    "GateChecker",
    "GateOutcome",
    "GateReport",
    "GateRule",
    "PromotionGate",
    "ThresholdRule",
    "check_gates",
    "parse_rule",
    "parse_rules",
]

Status = Literal["passed", "failed", "skipped"]
_EPS = 1e-9  # float noise must not flip a gate: 0.80 - 0.79 is 0.010000000000000009
_OPS = (">=", "<=", ">", "<")
_RULE_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*(?P<slice>[^\]]+?)\s*\])?\s*"
    r"(?P<op>>=|<=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_THRESHOLD_KEYS = ("metric", "min", "max", "slice", "name")
_CHANGE_KEYS = ("metric", "max_regression", "relative", "direction", "name")
_FAIRNESS_KEYS = ("fairness", "metric", "max_gap", "name")
_DIRECTIONS = {"higher": True, "maximize": True, "lower": False, "minimize": False}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _compare(value: float, op: str, bound: float) -> bool:
    if op == ">=":
        return value >= bound - _EPS
    if op == "<=":
        return value <= bound + _EPS
    if op == ">":
        return value > bound
    return value < bound


@dataclass(frozen=True)
class GateOutcome:
    """One rule's verdict, the values it compared, and a sentence for people."""

    rule: str
    kind: Literal["threshold", "slice", "change", "fairness"]
    status: Status
    message: str
    values: dict[str, Any] = field(default_factory=dict)
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "rule": self.rule,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "message": self.message,
            "values": _jsonable(self.values),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class GateRule(Protocol):
    """A parsed rule: its canonical text and how to check it."""

    text: str
    name: str | None

    def check(self, candidate: Evaluation, champion: Evaluation | None) -> GateOutcome: ...


def _metric_for(rule: str, metric: str, evaluation: Evaluation) -> None:
    """A rule's metric must belong to the evaluated task (a config error otherwise)."""
    info = METRICS[metric]
    if info.task != evaluation.task:
        allowed = [m for m, i in METRICS.items() if i.task == evaluation.task]
        raise SpecError(
            f"gate {rule!r}: metric {metric!r} is a {info.task} metric, but the model is "
            f"{evaluation.task}; allowed: {', '.join(allowed)}",
            field="metric",
            rule="gate",
        )


def _slice_column(rule: str, column: str, evaluation: Evaluation) -> None:
    if column not in evaluation.slices:
        known = ", ".join(evaluation.slices) or "none"
        raise SpecError(
            f"gate {rule!r}: column {column!r} was not sliced by evaluate; sliced columns: {known} "
            "(add it to the evaluation's slices)",
            field="slice",
            rule="gate",
        )


@dataclass(frozen=True)
class ThresholdRule:
    """``metric`` against fixed bounds, overall or on every slice of ``slice``."""

    metric: str
    bounds: tuple[tuple[str, float], ...]
    slice: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        target = self.metric if self.slice is None else f"{self.metric}[{self.slice}]"
        return " and ".join(f"{target} {op} {bound:g}" for op, bound in self.bounds)

    def _failed_bounds(self, value: float) -> list[str]:
        return [f"{op} {bound:g}" for op, bound in self.bounds if not _compare(value, op, bound)]

    def check(self, candidate: Evaluation, champion: Evaluation | None) -> GateOutcome:
        """Pass when the value (every evaluated slice's value) is within the bounds."""
        _metric_for(self.text, self.metric, candidate)
        bounds = [[op, b] for op, b in self.bounds]
        if self.slice is None:
            value = candidate.metrics.get(self.metric)
            if value is None:
                reason = candidate.skipped.get(self.metric, "not computed")
                return self._outcome(
                    "threshold", "failed", f"{self.metric} was not computed ({reason}), so it cannot pass",
                    {"candidate": None, "bounds": bounds},
                )
            failed = self._failed_bounds(value)
            status: Status = "failed" if failed else "passed"
            message = (
                f"{self.metric} = {_num(value)}, needs {' and '.join(failed)}"
                if failed
                else f"{self.metric} = {_num(value)} is within {self.text.replace(self.metric + ' ', '')}"
            )
            return self._outcome("threshold", status, message, {"candidate": value, "bounds": bounds})
        _slice_column(self.text, self.slice, candidate)
        values = candidate.slice_values(self.slice, self.metric)
        skipped = candidate.slice_skips(self.slice, self.metric)
        data = {"slices": values, "skipped_slices": skipped, "bounds": bounds}
        if not values:
            return self._outcome(
                "slice", "skipped",
                f"skipped: {self.metric} was computed on no slice of {self.slice!r} "
                f"({len(skipped)} skipped, e.g. {next(iter(skipped.values()), 'no slices')})",
                data,
            )
        failing = {label: v for label, v in values.items() if self._failed_bounds(v)}
        note = f"; {len(skipped)} slice(s) skipped: {', '.join(skipped)}" if skipped else ""
        if failing:
            listed = ", ".join(f"{label}={_num(v)}" for label, v in failing.items())
            return self._outcome(
                "slice", "failed",
                f"{self.metric} fails {self.text} on {len(failing)} of {len(values)} slices of "
                f"{self.slice!r}: {listed}{note}",
                {**data, "failing": failing},
            )
        return self._outcome(
            "slice", "passed",
            f"{self.metric} passes {self.text} on all {len(values)} evaluated slices of {self.slice!r}{note}",
            data,
        )

    def _outcome(self, kind: Any, status: Status, message: str, values: dict[str, Any]) -> GateOutcome:
        return GateOutcome(self.text, kind, status, message, {"metric": self.metric, **values}, self.name)


@dataclass(frozen=True)
class ChangeRule:
    """The candidate may not be worse than the champion by more than ``max_regression``.

    ``relative`` measures the regression as a share of the champion's value.
    ``higher_is_better`` defaults to the metric's direction.
    """

    metric: str
    max_regression: float
    relative: bool = False
    higher_is_better: bool = True
    name: str | None = None

    @property
    def text(self) -> str:
        unit = f"{self.max_regression:.4g} relative" if self.relative else f"{self.max_regression:g}"
        better = "higher" if self.higher_is_better else "lower"
        return f"{self.metric} regresses at most {unit} vs champion ({better} is better)"

    def check(self, candidate: Evaluation, champion: Evaluation | None) -> GateOutcome:
        """Pass when the worsening vs the champion is within ``max_regression``."""
        _metric_for(self.text, self.metric, candidate)
        data: dict[str, Any] = {
            "metric": self.metric,
            "max_regression": self.max_regression,
            "relative": self.relative,
            "higher_is_better": self.higher_is_better,
        }
        if champion is None:
            return GateOutcome(self.text, "change", "skipped", "skipped: no champion yet", data, self.name)
        new = candidate.metrics.get(self.metric)
        old = champion.metrics.get(self.metric)
        data.update(candidate=new, champion=old)
        if new is None:
            reason = candidate.skipped.get(self.metric, "not computed")
            return GateOutcome(
                self.text, "change", "failed",
                f"{self.metric} was not computed for the candidate ({reason}), so it cannot pass",
                data, self.name,
            )
        if old is None:
            reason = champion.skipped.get(self.metric, "not computed")
            return GateOutcome(
                self.text, "change", "skipped",
                f"skipped: the champion has no {self.metric} ({reason})", data, self.name,
            )
        worse_by = (old - new) if self.higher_is_better else (new - old)
        if self.relative:
            worse_by = worse_by / abs(old) if old != 0 else (0.0 if worse_by <= _EPS else math.inf)
        data["regression"] = worse_by
        what = "relative regression" if self.relative else "regression"
        head = f"{self.metric} {_num(new)} vs champion {_num(old)}"
        if worse_by <= self.max_regression + _EPS:
            tail = f"improved by {_num(-worse_by)}" if worse_by < -_EPS else f"{what} {_num(max(worse_by, 0.0))}"
            return GateOutcome(
                self.text, "change", "passed",
                f"{head}: {tail}, within {_num(self.max_regression)}", data, self.name,
            )
        return GateOutcome(
            self.text, "change", "failed",
            f"{head}: {what} {_num(worse_by)} exceeds max_regression {_num(self.max_regression)}",
            data, self.name,
        )


@dataclass(frozen=True)
class FairnessRule:
    """``metric`` may differ across the slices of ``column`` by at most ``max_gap``."""

    column: str
    metric: str
    max_gap: float
    name: str | None = None

    @property
    def text(self) -> str:
        return f"{self.metric} gap across {self.column} <= {self.max_gap:g}"

    def check(self, candidate: Evaluation, champion: Evaluation | None) -> GateOutcome:
        """Pass when max - min of ``metric`` across slices is within ``max_gap``."""
        _metric_for(self.text, self.metric, candidate)
        _slice_column(self.text, self.column, candidate)
        from loopml.evaluate import fairness

        gap = fairness(candidate, self.column, self.metric)
        data = {"metric": self.metric, "column": self.column, "max_gap": self.max_gap, **gap.to_dict()}
        if gap.gap is None:
            return GateOutcome(self.text, "fairness", "skipped", f"skipped: {gap.reason}", data, self.name)
        spread = (
            f"{self.metric} gap across {self.column!r} is {_num(gap.gap)} "
            f"({gap.highest} {_num(gap.values[gap.highest])} vs "  # type: ignore[index]
            f"{gap.lowest} {_num(gap.values[gap.lowest])})"  # type: ignore[index]
        )
        if gap.gap <= self.max_gap + _EPS:
            return GateOutcome(
                self.text, "fairness", "passed", f"{spread}, within max_gap {_num(self.max_gap)}", data, self.name
            )
        return GateOutcome(
            self.text, "fairness", "failed", f"{spread}, above max_gap {_num(self.max_gap)}", data, self.name
        )


def _err(where: str, message: str, key: str) -> SpecError:
    return SpecError(f"gate {where}: {message}", field=key, rule="gate")


def _metric_key(where: str, raw: Mapping[str, Any]) -> str:
    metric = raw.get("metric")
    if metric not in METRICS:
        raise _err(where, f"metric {metric!r} is unknown; allowed: {', '.join(METRICS)}", "metric")
    return str(metric)


def _bound(where: str, raw: Mapping[str, Any], key: str, *, non_negative: bool = False) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(where, f"{key!r} must be a number; got {value!r}", key)
    if non_negative and value < 0:
        raise _err(where, f"{key!r} must be >= 0; got {value!r}", key)
    return float(value)


def _name(where: str, raw: Mapping[str, Any]) -> str | None:
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _err(where, f"'name' must be a string; got {name!r}", "name")
    return name


def _check_keys(where: str, raw: Mapping[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    unknown = [str(k) for k in raw if k not in allowed]
    if unknown:
        raise _err(
            where,
            f"unknown key(s) {', '.join(map(repr, unknown))} for a {kind} rule; allowed: {', '.join(allowed)}",
            unknown[0],
        )


def parse_rule(raw: str | Mapping[str, Any], index: int | None = None) -> GateRule:
    """One rule from a string (``"roc_auc >= 0.8"``, ``"f1[season] >= 0.6"``) or a mapping.

    Raises:
        SpecError: naming the rule, the key and the allowed values.
    """
    where = f"#{index + 1} {raw!r}" if index is not None else repr(raw)
    if isinstance(raw, str):
        match = _RULE_RE.match(raw)
        if not match:
            raise _err(
                where,
                "a string rule reads 'METRIC OP NUMBER' or 'METRIC[COLUMN] OP NUMBER' with OP one of "
                f"{', '.join(_OPS)} (e.g. 'roc_auc >= 0.8')",
                "rule",
            )
        metric = match["metric"]
        if metric not in METRICS:
            raise _err(where, f"metric {metric!r} is unknown; allowed: {', '.join(METRICS)}", "metric")
        return ThresholdRule(metric, ((match["op"], float(match["value"])),), match["slice"])
    if not isinstance(raw, Mapping):
        raise _err(where, f"a rule is a string or a mapping; got {type(raw).__name__}", "rule")
    if "fairness" in raw:
        _check_keys(where, raw, _FAIRNESS_KEYS, "fairness")
        column = raw["fairness"]
        if not isinstance(column, str) or not column:
            raise _err(where, f"'fairness' must name a sliced column; got {column!r}", "fairness")
        if "max_gap" not in raw:
            raise _err(where, "a fairness rule needs 'max_gap'", "max_gap")
        return FairnessRule(
            column, _metric_key(where, raw), _bound(where, raw, "max_gap", non_negative=True), _name(where, raw)
        )
    if "max_regression" in raw:
        _check_keys(where, raw, _CHANGE_KEYS, "change")
        metric = _metric_key(where, raw)
        relative = raw.get("relative", False)
        if not isinstance(relative, bool):
            raise _err(where, f"'relative' must be true or false; got {relative!r}", "relative")
        direction = raw.get("direction")
        if direction is None:
            higher = METRICS[metric].higher_is_better
        elif direction in _DIRECTIONS:
            higher = _DIRECTIONS[direction]
        else:
            raise _err(
                where, f"direction {direction!r} is unknown; allowed: {', '.join(_DIRECTIONS)}", "direction"
            )
        return ChangeRule(
            metric, _bound(where, raw, "max_regression", non_negative=True), relative, higher, _name(where, raw)
        )
    _check_keys(where, raw, _THRESHOLD_KEYS, "threshold")
    metric = _metric_key(where, raw)
    bounds: list[tuple[str, float]] = []
    if "min" in raw:
        bounds.append((">=", _bound(where, raw, "min")))
    if "max" in raw:
        bounds.append(("<=", _bound(where, raw, "max")))
    if not bounds:
        raise _err(
            where,
            "a threshold rule needs 'min' or 'max' (or use 'max_regression' for a change rule, "
            "'fairness' for a fairness rule)",
            "min",
        )
    column = raw.get("slice")
    if column is not None and (not isinstance(column, str) or not column):
        raise _err(where, f"'slice' must name a sliced column; got {column!r}", "slice")
    return ThresholdRule(metric, tuple(bounds), column, _name(where, raw))


def parse_rules(rules: str | Mapping[str, Any] | Iterable[str | Mapping[str, Any]] | None) -> list[GateRule]:
    """A list of rules (a single rule, or None for none)."""
    if rules is None:
        return []
    if isinstance(rules, (str, Mapping)):
        rules = [rules]
    parsed: list[GateRule] = []
    for i, raw in enumerate(rules):
        rule = raw if hasattr(raw, "check") and hasattr(raw, "text") else parse_rule(raw, i)
        parsed.append(rule)  # type: ignore[arg-type]
    return parsed


@dataclass(frozen=True)
class GateReport:
    """All rules' outcomes; ``passed`` unless some rule failed (skipped rules do not fail)."""

    passed: bool
    outcomes: tuple[GateOutcome, ...]
    has_champion: bool
    message: str

    @property
    def failures(self) -> tuple[GateOutcome, ...]:
        """The outcomes that failed."""
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def skipped(self) -> tuple[GateOutcome, ...]:
        """The outcomes that were skipped, with their reasons."""
        return tuple(o for o in self.outcomes if o.status == "skipped")

    def raise_for_failure(self) -> None:
        """Raise :class:`GateFailed` (carrying the failed outcomes) unless the report passed."""
        if not self.passed:
            raise GateFailed(self.message, failures=[o.to_dict() for o in self.failures])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "passed": self.passed,
            "has_champion": self.has_champion,
            "message": self.message,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def _same_data(candidate: Evaluation, champion: Evaluation) -> None:
    if candidate.task != champion.task:
        raise ValidationError(
            f"candidate is {candidate.task} but the champion is {champion.task}; gates compare like with like",
            field="champion",
            rule="task",
        )
    if candidate.data_digest and champion.data_digest and candidate.data_digest != champion.data_digest:
        raise ValidationError(
            "the champion was evaluated on different data than the candidate "
            f"(digest {champion.data_digest} vs {candidate.data_digest}); "
            "evaluate both on the same test rows",
            field="champion",
            rule="same_data",
        )


def check_gates(
    rules: str | Mapping[str, Any] | Iterable[str | Mapping[str, Any]] | None,
    candidate: Evaluation,
    champion: Evaluation | None = None,
) -> GateReport:
    """Check every rule against the candidate's (and the champion's) evaluation.

    Raises:
        SpecError: a malformed rule, or one naming a metric or slice column the
            evaluation does not have.
        ValidationError: candidate and champion were evaluated on different data.
    """
    parsed = parse_rules(rules)
    if champion is not None:
        _same_data(candidate, champion)
    outcomes = tuple(rule.check(candidate, champion) for rule in parsed)
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    passed = not failed
    parts = [f"{len(outcomes) - len(failed) - len(skipped)} of {len(outcomes)} gates passed"]
    if failed:
        parts.append(f"{len(failed)} failed: " + "; ".join(f"{o.rule}: {o.message}" for o in failed))
    if skipped:
        parts.append(f"{len(skipped)} skipped")
    if champion is None and any(o.kind == "change" for o in outcomes):
        parts.append("no champion yet, so change rules were skipped")
    if not outcomes:
        parts = ["no gates configured"]
    return GateReport(passed, outcomes, champion is not None, "; ".join(parts))


@runtime_checkable
class PromotionGate(Protocol):
    """What the registry asks before a promotion (a structural type; no import needed)."""

    def __call__(self, candidate: Evaluation, champion: Evaluation | None) -> GateReport: ...


class GateChecker:
    """A :class:`PromotionGate` over fixed rules, parsed (and checked) once up front."""

    def __init__(self, rules: str | Mapping[str, Any] | Iterable[str | Mapping[str, Any]] | None) -> None:
        self.rules: tuple[GateRule, ...] = tuple(parse_rules(rules))

    def __call__(self, candidate: Evaluation, champion: Evaluation | None = None) -> GateReport:
        return check_gates(self.rules, candidate, champion)

    def __repr__(self) -> str:
        return f"GateChecker({[r.text for r in self.rules]!r})"
