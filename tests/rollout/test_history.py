"""Which version answered request X (the prediction log), beside who served when (the traffic history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from loopml.deploy import shadow_endpoint_name
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.predictions import open_prediction_log
from loopml.rollout import who_answered


def _record(rid: str, endpoint: str, version: int, *, rows: int = 1, status: int = 200) -> dict[str, Any]:
    return {"request_id": rid, "ts": datetime.now(UTC), "endpoint": endpoint, "model_name": "churn",
            "model_version": version, "inputs": {"x": [float(i) for i in range(rows)]},
            "outputs": {"predict": [version] * rows} if status == 200 else None,
            "latency_ms": 2.0, "status": status, "error": None if status == 200 else "model failed"}


def test_who_answered_names_the_version_and_any_shadow(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    with open_prediction_log(ws) as log:
        log.submit([_record("a", "churn-api", 1), _record("b", "churn-api", 2, rows=2),
                    _record("c", "churn-api", 2, status=500), _record("z", "other", 7)])
        log.submit([_record("a", shadow_endpoint_name("churn-api"), 3)])
    answers = who_answered(ws, "a")
    assert [(x.endpoint, x.model_version, x.shadow) for x in answers] == [("churn-api", 1, False),
                                                                          ("churn-api.shadow", 3, True)]
    assert answers[0].status == 200 and answers[0].prediction == 1 and answers[0].ts is not None
    two = who_answered(ws, "b", endpoint="churn-api")
    assert [(x.row, x.model_version) for x in two] == [(0, 2), (1, 2)]
    failed = who_answered(ws, "c")[0]
    assert (failed.model_version, failed.status, failed.error) == (2, 500, "model failed")
    assert who_answered(ws, "z")[0].to_dict()["endpoint"] == "other"
    with pytest.raises(NotFoundError, match="request 'nope' is not in the prediction log of any endpoint"):
        who_answered(ws, "nope")
    with pytest.raises(NotFoundError, match="request 'z' is not in the prediction log of endpoint 'churn-api'"):
        who_answered(ws, "z", endpoint="churn-api")
    with pytest.raises(NotFoundError, match="endpoint 'ghost' has no logged predictions; logged: churn-api, other"):
        who_answered(ws, "a", endpoint="ghost")
    with pytest.raises(ValidationError, match="request_id must not be empty"):
        who_answered(ws, "")


def test_served_between_names_the_versions_with_traffic_in_the_window(sqlite_workspace: Any) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy, rollback
    from loopml.register import register_model
    from loopml.rollout import served_between

    ws = sqlite_workspace
    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    model = LogisticRegression().fit(x, (x.a > 9).astype(int))
    for _ in range(3):
        register_model(ws, "churn", model, gates_passed=True)
    deploy(ws, "e", "churn/1")
    t1 = datetime.now(UTC)
    deploy(ws, "e", "churn/2", strategy="canary", steps=[0.5, 1.0])
    rollback(ws, "e", reason="slow")
    t2 = datetime.now(UTC)
    deploy(ws, "e", "churn/3")
    before = served_between(ws, "e", until=t1)
    assert before.versions_served == [1] and [c.revision for c in before.changes] == [1]
    window = served_between(ws, "e", t1, t2)
    assert window.versions_served == [1, 2] and [c.revision for c in window.changes] == [1, 2, 3]
    everything = served_between(ws, "e", "1h")
    assert everything.versions_served == [1, 2, 3] and everything.until >= t2
    data = everything.to_dict()
    assert data["since"] == everything.since.isoformat() and data["changes"][-1]["revision"] == 4
    with pytest.raises(ValidationError, match="end must not be before start"):
        served_between(ws, "e", t2, t1)
    with pytest.raises(ValidationError, match="since 'soon' is not a time"):
        served_between(ws, "e", "soon")
    with pytest.raises(NotFoundError, match="endpoint 'ghost' does not exist"):
        served_between(ws, "ghost")
