"""End-to-end lineage: from a request id back to data, code, gates, approvals and the rollout; from data forward."""

from __future__ import annotations

import json

import pytest
from gov_seed import SECRET_URL, seed

from loopml.governance.approvals import approve, request_approval, set_policy
from loopml.governance.trace import trace_dataset, trace_request
from loopml.kernel.exceptions import NotFoundError, ValidationError


def test_trace_from_a_request_id_reaches_every_stage(workspace) -> None:  # type: ignore[no-untyped-def]
    s = seed(workspace, deploy_v1=False)
    set_policy(workspace, "endpoint:churn-api", 1)
    req = request_approval(workspace.as_actor("ana"), "churn/1", endpoint="churn-api", reason="first release")
    approve(workspace.as_actor("bob"), req.id, reason="looks right")
    from loopml.deploy import deploy
    from gov_seed import log_predictions

    deploy(workspace.as_actor("mel"), "churn-api", "churn/1")
    ids = log_predictions(workspace, "churn-api", 1, 3)
    t = trace_request(workspace, ids[1], endpoint="churn-api")
    summary = t.summary
    assert summary["prediction"]["model_version"] == 1 and summary["endpoint"] == "churn-api"
    assert summary["model_version"]["ref"] == "churn/1" and summary["model_version"]["created_by"] == "ana"
    assert summary["run"]["id"] == summary["run"]["id"] and summary["run"]["params"] == {"C": "1.0"}
    assert [d["ref"] for d in summary["datasets"]] == [s.dataset] and len(summary["datasets"][0]["digest"]) == 64
    assert summary["gates"]["passed"] is True
    assert summary["approvals"][0]["decisions"][0]["actor"] == "bob"
    assert summary["rollout"]["created_by"] == "mel" and summary["rollout"]["strategy"] == "direct"
    assert "customer_id" not in json.dumps(summary["prediction"]).replace("f_customer_id", "")  # names only
    keys = {n.key for n in t.graph.nodes}
    assert {"prediction:req-1", "model_version:churn/1", "dataset_version:customers@1", "approval:1",
            "endpoint:churn-api"} <= keys and any(k.startswith("run:") for k in keys)
    assert t.to_dot().startswith("digraph lineage {") and '"prediction:req-1"' in t.to_dot()
    assert t.to_mermaid().startswith("flowchart LR") and "in_service_for" in t.to_mermaid()


def test_trace_from_a_dataset_version_reaches_models_deployments_and_predictions(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    s = seed(sqlite_workspace)
    d = trace_dataset(sqlite_workspace, s.dataset)
    assert d.summary["models"] == ["churn/1", "churn/2"]
    assert d.summary["endpoints"] == ["churn-api"] and d.summary["rollouts"] == ["1"]
    assert d.summary["prediction_windows"] == [
        {**d.summary["prediction_windows"][0], "endpoint": "churn-api", "model_version": "churn/1", "predictions": 6}]
    text = json.dumps(d.to_dict()) + d.to_dot() + d.to_mermaid()
    assert SECRET_URL not in text and "S3CRET" not in text


def test_unknown_request_id_names_where_it_looked(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    seed(sqlite_workspace)
    with pytest.raises(NotFoundError, match="request id 'nope' is not in the prediction log of endpoint 'churn-api'"):
        trace_request(sqlite_workspace, "nope", endpoint="churn-api")
    with pytest.raises(NotFoundError, match="endpoint 'other' has no logged predictions"):
        trace_request(sqlite_workspace, "req-1", endpoint="other")
    with pytest.raises(ValidationError, match="request id must be"):
        trace_request(sqlite_workspace, " ")
    assert trace_request(sqlite_workspace, "req-2").summary["endpoint"] == "churn-api"  # searched every endpoint
