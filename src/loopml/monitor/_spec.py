"""The monitor definition: which endpoint, which window, which reference, which checks, which alerts.

A spec is plain data (YAML or a dict or Python), validated once here so that a
bad key fails at ``define`` time with a :class:`SpecError` naming the key and
the allowed values, never halfway through a scheduled run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loopml.kernel.cron import Cron
from loopml.kernel.exceptions import SpecError, ValidationError
from loopml.kernel.types import check_name

__all__ = [
    "CHECK_NAMES",
    "AlertRule",
    "MonitorSpec",
    "default_spec",
    "load_spec",
    "parse_duration",
]

#: Every check a monitor knows, in report order.
CHECK_NAMES = (
    "schema", "data_drift", "prediction_drift", "quality", "outliers", "performance", "segments", "health",
)
#: The checks of the default monitor (an endpoint with no definition).
DEFAULT_CHECKS = ("schema", "data_drift", "prediction_drift", "quality", "outliers", "health")

#: Parameters each check accepts, with their defaults (documented in README.md).
CHECK_DEFAULTS: dict[str, dict[str, Any]] = {
    "schema": {},
    "data_drift": {"method": "auto", "alpha": 0.05, "min_effect": None, "correction": None,
                   "drift_share": 0.5, "threshold": 0.1, "columns": None},
    "prediction_drift": {"method": "auto", "alpha": 0.05, "min_effect": None, "threshold": 0.1},
    "quality": {"max_missing_rate": 0.05, "max_out_of_range_share": 0.01, "max_unseen_share": 0.01},
    "outliers": {"max_share": 0.05},
    "performance": {"metric": None, "max_drop": 0.05, "min_labels": 50},
    "segments": {"columns": [], "min_rows": 100, "max_segments": 20, "metric": None, "max_drop": 0.05,
                 "min_labels": 50, "drift_share": 0.5, "alpha": 0.05},
    "health": {"latency_p95_max_ms": None, "error_rate_max": 0.05},
}

_SEVERITIES = ("info", "warning", "critical")
_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TOP_KEYS = ("name", "endpoint", "model", "window", "schedule", "reference", "checks", "alerts", "enabled")


def parse_duration(text: Any, key: str) -> float:
    """``'24h'``, ``'15m'``, ``'7d'`` or a number of seconds, as seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text > 0:
        return float(text)
    match = _DUR_RE.match(str(text)) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise SpecError(f"{key} {text!r} is not a duration; use a number with s, m, h, d or w, e.g. '24h'",
                        field=key, rule="duration")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class AlertRule:
    """When ``check`` fails, raise an alert of ``severity``; quiet for ``cooldown_s`` after it resolves."""

    check: str
    severity: str = "warning"
    cooldown_s: float = 3600.0
    channels: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "cooldown_s": self.cooldown_s,
                "channels": [dict(c) for c in self.channels]}


@dataclass(frozen=True)
class MonitorSpec:
    """A monitor of one endpoint (see README.md for the YAML shape and the defaults).

    ``window`` is ``{"last": "24h"}`` (a time window ending now) or
    ``{"rows": N}`` (the newest N logged rows). ``reference`` is ``"model"``
    (the reference profile of the model version, the default) or a pinned
    window of the log ``{"since": ISO, "until": ISO}``, profiled once.
    ``model`` pins the model reference; by default it is the version that
    served most rows of the window, else ``ENDPOINT@champion``.
    """

    name: str
    endpoint: str
    model: str | None = None
    window: dict[str, Any] = field(default_factory=lambda: {"last": "24h"})
    schedule: str | None = None
    reference: str | dict[str, Any] = "model"
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: tuple[AlertRule, ...] = ()
    enabled: bool = True

    @property
    def window_seconds(self) -> float | None:
        """Length of a time window; None for a row-count window."""
        return parse_duration(self.window["last"], "window.last") if "last" in self.window else None

    @property
    def window_rows(self) -> int | None:
        return int(self.window["rows"]) if "rows" in self.window else None

    def check_params(self, check: str) -> dict[str, Any]:
        """The full parameters of an enabled check (defaults filled in)."""
        return {**CHECK_DEFAULTS[check], **self.checks[check]}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, stored in ``monitors.spec`` and reloadable with :meth:`from_dict`."""
        out = asdict(self)
        out["alerts"] = [a.to_dict() for a in self.alerts]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorSpec:
        """Validate a mapping (e.g. parsed YAML).

        Raises:
            SpecError: an unknown key, a wrong type or value; the message names
                the key and the allowed values.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a monitor spec must be a mapping, got {type(data).__name__}", field="spec", rule="type")
        _no_unknown(data, _TOP_KEYS, "spec")
        if "endpoint" not in data:
            raise SpecError("monitor spec needs 'endpoint' (the endpoint whose prediction log it watches)",
                            field="endpoint", rule="required")
        endpoint = _name(data["endpoint"], "endpoint")
        name = _name(data.get("name") or endpoint, "name")
        model = data.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise SpecError(f"model must be a model reference like 'churn@champion' or 'churn/3', got {model!r}",
                            field="model", rule="type")
        window = _window(data.get("window", {"last": "24h"}))
        schedule = data.get("schedule")
        if schedule is not None:
            if not isinstance(schedule, str):
                raise SpecError(f"schedule must be a 5-field cron string, got {schedule!r}", field="schedule", rule="cron")
            try:
                Cron.parse(schedule)
            except ValidationError as exc:
                raise SpecError(str(exc), field="schedule", rule="cron") from None
        reference = _reference(data.get("reference", "model"))
        checks = _checks(data.get("checks"))
        alerts = _alerts(data.get("alerts"), checks)
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise SpecError(f"enabled must be true or false, got {enabled!r}", field="enabled", rule="type")
        return cls(name=name, endpoint=endpoint, model=model, window=window, schedule=schedule,
                   reference=reference, checks=checks, alerts=alerts, enabled=enabled)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> MonitorSpec:
        """Load a spec from a YAML file path or YAML text."""
        return load_spec(text_or_path)


def load_spec(source: str | Path | Mapping[str, Any] | MonitorSpec) -> MonitorSpec:
    """A :class:`MonitorSpec` from a spec, a mapping, a YAML file path or YAML text."""
    if isinstance(source, MonitorSpec):
        return source
    if isinstance(source, Mapping):
        return MonitorSpec.from_dict(source)
    import yaml

    text = str(source)
    path = Path(text) if isinstance(source, Path) or (("\n" not in text) and text.endswith((".yaml", ".yml"))) else None
    if path is not None:
        if not path.is_file():
            raise SpecError(f"monitor spec file {str(path)!r} does not exist", field="spec", rule="file")
        text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"monitor spec is not valid YAML: {str(exc).splitlines()[0]}", field="spec", rule="yaml") from None
    return MonitorSpec.from_dict(data)


def default_spec(endpoint: str) -> MonitorSpec:
    """The monitor an endpoint gets without a definition: drift, quality, outliers and health, on 24h."""
    return MonitorSpec.from_dict({"endpoint": endpoint, "checks": {c: {} for c in DEFAULT_CHECKS}})


def with_model(spec: MonitorSpec, model: str | None) -> MonitorSpec:
    """The same spec with another model reference (the CLI's ``--model``)."""
    return replace(spec, model=model)


# ----------------------------------------------------------------- validation


def _no_unknown(data: Mapping[str, Any], allowed: tuple[str, ...] | list[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}",
                            field=f"{where}.{key}" if where != "spec" else str(key), rule="unknown_key")


def _name(value: Any, key: str) -> str:
    try:
        return check_name(value if isinstance(value, str) else repr(value), key)
    except ValidationError as exc:
        raise SpecError(str(exc), field=key, rule="name") from None


def _window(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("last", "rows"):
        raise SpecError(f"window must be {{last: DURATION}} or {{rows: N}}, e.g. {{last: 24h}}; got {value!r}",
                        field="window", rule="allowed_values")
    if "last" in value:
        parse_duration(value["last"], "window.last")
        return {"last": value["last"]}
    rows = value["rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise SpecError(f"window.rows must be an integer >= 1, got {rows!r}", field="window.rows", rule="range")
    return {"rows": rows}


def _reference(value: Any) -> str | dict[str, Any]:
    if value == "model":
        return "model"
    if isinstance(value, Mapping) and set(value) <= {"since", "until"} and "since" in value and "until" in value:
        from loopml.predictions import parse_time

        try:
            lo, hi = parse_time(str(value["since"]), "reference.since"), parse_time(str(value["until"]), "reference.until")
        except ValidationError as exc:
            raise SpecError(str(exc), field=exc.field, rule="time") from None
        if lo is None or hi is None or hi <= lo:
            raise SpecError("reference.until must be after reference.since", field="reference.until", rule="after_since")
        return {"since": lo.isoformat(), "until": hi.isoformat()}
    raise SpecError(f"reference must be 'model' or a pinned window {{since: ISO, until: ISO}}; got {value!r}",
                    field="reference", rule="allowed_values")


def _number(value: Any, key: str, low: float, high: float | None = None, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        span = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise SpecError(f"{key} must be a number {span}, got {value!r}", field=key, rule="range")
    return value


def _check_params(check: str, params: Any) -> dict[str, Any]:
    if params is None or params is True:
        params = {}
    if not isinstance(params, Mapping):
        raise SpecError(f"checks.{check} must be a mapping of parameters (or {{}}), got {params!r}",
                        field=f"checks.{check}", rule="type")
    _no_unknown(params, list(CHECK_DEFAULTS[check]), f"checks.{check}")
    out = dict(params)
    for key, value in out.items():
        where = f"checks.{check}.{key}"
        if key in ("alpha", "drift_share") or key in ("max_missing_rate", "max_out_of_range_share", "max_unseen_share", "max_share", "error_rate_max"):
            _number(value, where, 0.0, 1.0)
        elif key in ("min_effect", "latency_p95_max_ms"):
            _number(value, where, 0.0, allow_none=True)
        elif key in ("threshold", "max_drop"):
            _number(value, where, 0.0)
        elif key in ("min_labels", "min_rows", "max_segments"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"{where} must be an integer >= 1, got {value!r}", field=where, rule="range")
        elif key == "method":
            from loopml.monitor.drift import METHODS

            if value not in METHODS:
                raise SpecError(f"{where} {value!r} is unknown; allowed: {', '.join(METHODS)}", field=where,
                                rule="allowed_values")
        elif key == "correction":
            from loopml.monitor.drift import CORRECTIONS

            if value is not None and value not in CORRECTIONS:
                raise SpecError(f"{where} {value!r} is unknown; allowed: {', '.join(CORRECTIONS)}", field=where,
                                rule="allowed_values")
        elif key == "metric":
            from loopml.evaluate import METRICS

            if value is not None and value not in METRICS:
                raise SpecError(f"{where} {value!r} is unknown; allowed: {', '.join(METRICS)}", field=where,
                                rule="allowed_values")
        elif key == "columns" and value is not None and (
                not isinstance(value, list) or not all(isinstance(c, str) for c in value)):
            raise SpecError(f"{where} must be a list of column names, got {value!r}", field=where, rule="type")
    if check == "segments" and not out.get("columns"):
        raise SpecError("checks.segments.columns must name at least one column to segment by",
                        field="checks.segments.columns", rule="required")
    return out


def _checks(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {c: {} for c in DEFAULT_CHECKS}
    if isinstance(value, list):  # a list of names: each with its defaults
        value = {c: {} for c in value}
    if not isinstance(value, Mapping) or not value:
        raise SpecError(f"checks must be a non-empty mapping of check -> parameters; allowed checks: "
                        f"{', '.join(CHECK_NAMES)}", field="checks", rule="type")
    for key in value:
        if key not in CHECK_NAMES:
            raise SpecError(f"checks: unknown check {key!r}; allowed: {', '.join(CHECK_NAMES)}",
                            field=f"checks.{key}", rule="allowed_values")
    return {c: _check_params(c, value[c]) for c in CHECK_NAMES if c in value and value[c] is not False}


def _alerts(value: Any, checks: Mapping[str, Any]) -> tuple[AlertRule, ...]:
    if value is None:  # default: every check alerts, health failures are critical
        return tuple(AlertRule(check=c, severity="critical" if c == "health" else "warning") for c in checks)
    if not isinstance(value, list):
        raise SpecError(f"alerts must be a list of rules {{check, severity, cooldown_s, channels}}, got {value!r}",
                        field="alerts", rule="type")
    rules = []
    for i, item in enumerate(value):
        where = f"alerts[{i}]"
        if not isinstance(item, Mapping) or "check" not in item:
            raise SpecError(f"{where} must be a mapping with 'check'", field=where, rule="required")
        _no_unknown(item, ("check", "severity", "cooldown_s", "channels"), where)
        check = item["check"]
        if check not in checks:
            raise SpecError(f"{where}.check {check!r} is not an enabled check; enabled: {', '.join(checks)}",
                            field=f"{where}.check", rule="allowed_values")
        severity = item.get("severity", "warning")
        if severity not in _SEVERITIES:
            raise SpecError(f"{where}.severity {severity!r} is unknown; allowed: {', '.join(_SEVERITIES)}",
                            field=f"{where}.severity", rule="allowed_values")
        cooldown = _number(item.get("cooldown_s", 3600.0), f"{where}.cooldown_s", 0.0)
        channels = item.get("channels") or []
        if not isinstance(channels, list):
            raise SpecError(f"{where}.channels must be a list of notifier configs", field=f"{where}.channels", rule="type")
        from loopml.monitor.alerts import NOTIFIER_TYPES, notifier_from_config

        for j, ch in enumerate(channels):
            if not isinstance(ch, Mapping) or ch.get("type") not in NOTIFIER_TYPES:
                got = ch.get("type") if isinstance(ch, Mapping) else ch
                raise SpecError(f"{where}.channels[{j}].type {got!r} is unknown; allowed: {', '.join(NOTIFIER_TYPES)}",
                                field=f"{where}.channels[{j}].type", rule="allowed_values")
            try:  # a channel that could never deliver fails at define time, not at the first incident
                notifier_from_config(dict(ch))
            except ValidationError as exc:
                key = f"{where}.channels[{j}]"
                if exc.field and not exc.field.startswith("notify"):
                    key += f".{exc.field}"
                raise SpecError(f"{where}.channels[{j}]: {exc}", field=key, rule=exc.rule or "options") from None
        rules.append(AlertRule(check=check, severity=severity, cooldown_s=float(cooldown),
                               channels=tuple(dict(c) for c in channels)))
    return tuple(rules)
