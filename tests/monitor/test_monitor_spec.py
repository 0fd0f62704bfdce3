"""Monitor specs: YAML loading, defaults, and errors that name the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.kernel.exceptions import SpecError
from loopml.monitor import MonitorSpec, default_spec, load_spec

YAML = """
name: churn-daily
endpoint: churn
model: churn@champion
window: {last: 24h}
schedule: "0 * * * *"
checks:
  schema: {}
  data_drift: {method: auto, alpha: 0.01, drift_share: 0.3}
  quality: {max_missing_rate: 0.02}
  performance: {metric: f1, max_drop: 0.05, min_labels: 200}
  segments: {columns: [plan], min_rows: 500}
  health: {latency_p95_max_ms: 250, error_rate_max: 0.01}
alerts:
  - check: data_drift
    severity: warning
    cooldown_s: 7200
    channels: [{type: webhook, url: "http://127.0.0.1:9/hook"}]
  - {check: health, severity: critical}
"""


def test_yaml_spec_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(YAML)
    spec = load_spec(path)
    assert spec.name == "churn-daily" and spec.window_seconds == 86400 and spec.window_rows is None
    assert list(spec.checks) == ["schema", "data_drift", "quality", "performance", "segments", "health"]
    assert spec.check_params("data_drift")["alpha"] == 0.01
    assert spec.check_params("data_drift")["min_effect"] is None  # default filled in
    assert spec.alerts[0].channels[0]["type"] == "webhook" and spec.alerts[0].cooldown_s == 7200
    assert MonitorSpec.from_dict(spec.to_dict()) == spec
    assert MonitorSpec.from_yaml(YAML) == spec


def test_defaults() -> None:
    spec = default_spec("churn")
    assert spec.name == "churn" and spec.window == {"last": "24h"} and spec.reference == "model"
    assert list(spec.checks) == ["schema", "data_drift", "prediction_drift", "quality", "outliers", "health"]
    assert {a.check: a.severity for a in spec.alerts}["health"] == "critical"
    assert MonitorSpec.from_dict({"endpoint": "e", "checks": ["health"], "alerts": []}).alerts == ()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": "x"}, "monitor spec needs 'endpoint'"),
        ({"endpoint": "e", "windw": {}}, "unknown key 'windw'; allowed: name, endpoint, model, window"),
        ({"endpoint": "e", "window": {"days": 1}}, r"window must be \{last: DURATION\} or \{rows: N\}"),
        ({"endpoint": "e", "window": {"last": "soon"}}, "window.last 'soon' is not a duration"),
        ({"endpoint": "e", "window": {"rows": 0}}, r"window.rows must be an integer >= 1, got 0"),
        ({"endpoint": "e", "schedule": "* * *"}, "must have 5 fields"),
        ({"endpoint": "e", "checks": {"drift": {}}}, "unknown check 'drift'; allowed: schema, data_drift"),
        ({"endpoint": "e", "checks": {"data_drift": {"method": "magic"}}},
         "checks.data_drift.method 'magic' is unknown; allowed: auto, evidently"),
        ({"endpoint": "e", "checks": {"data_drift": {"alpha": 2}}}, r"checks.data_drift.alpha must be a number \[0.0, 1.0\]"),
        ({"endpoint": "e", "checks": {"quality": {"max_nulls": 1}}},
         "checks.quality: unknown key 'max_nulls'; allowed: max_missing_rate"),
        ({"endpoint": "e", "checks": {"performance": {"metric": "auc"}}},
         "checks.performance.metric 'auc' is unknown; allowed: accuracy"),
        ({"endpoint": "e", "checks": {"segments": {}}}, "checks.segments.columns must name at least one column"),
        ({"endpoint": "e", "checks": ["health"], "alerts": [{"check": "data_drift"}]},
         r"alerts\[0\].check 'data_drift' is not an enabled check; enabled: health"),
        ({"endpoint": "e", "alerts": [{"check": "health", "severity": "panic"}]},
         r"alerts\[0\].severity 'panic' is unknown; allowed: info, warning, critical"),
        ({"endpoint": "e", "alerts": [{"check": "health", "channels": [{"type": "pager"}]}]},
         r"alerts\[0\].channels\[0\].type 'pager' is unknown; allowed: webhook, slack, email"),
        ({"endpoint": "e", "alerts": [{"check": "health", "channels": [{"type": "webhook"}]}]},
         r"alerts\[0\].channels\[0\]: notifier 'webhook': .*missing 1 required positional argument: 'url'"),
        ({"endpoint": "e", "alerts": [{"check": "health", "channels": [{"type": "slack", "url": "hooks.x/y"}]}]},
         r"alerts\[0\].channels\[0\]: slack notifier url 'hooks.x/y' must start with http:// or https://"),
        ({"endpoint": "e", "reference": "training"}, "reference must be 'model' or a pinned window"),
        ({"endpoint": "e", "reference": {"since": "2024-05-02", "until": "2024-05-01"}},
         "reference.until must be after reference.since"),
        ({"endpoint": "bad name"}, "endpoint 'bad name' is invalid"),
    ],
)
def test_bad_specs_name_the_key_and_allowed_values(data: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        MonitorSpec.from_dict(data)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="monitor spec is not valid YAML"):
        load_spec("endpoint: [unclosed\n")
    with pytest.raises(SpecError, match="monitor spec file .*nope.yaml' does not exist"):
        load_spec(tmp_path / "nope.yaml")
