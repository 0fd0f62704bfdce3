"""Approvals, model cards, traces and data protection over HTTP against a running server (SQLite and
PostgreSQL), a test per role proving what it cannot do, and no secret in audit entries, cards or traces."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from .conftest import Live


def _load_seed():  # type: ignore[no-untyped-def]
    """The governance tests' seed (tests/governance has no package to import it from)."""
    if "gov_seed" in sys.modules:
        return sys.modules["gov_seed"]
    spec = importlib.util.spec_from_file_location("gov_seed", Path(__file__).parents[1] / "governance" / "gov_seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gov_seed"] = module
    spec.loader.exec_module(module)
    return module


gov_seed = _load_seed()

ROLES = ["viewer", "data_scientist", "ml_engineer", "approver", "admin"]


def test_approval_of_a_promotion_over_http(live: Live) -> None:
    gov_seed.seed(live.ws, deploy_v1=False)
    admin, ds, mle, appr, viewer = (live.client(r) for r in ("admin", "data_scientist", "ml_engineer", "approver", "viewer"))
    assert admin.put("/approvals/policies/endpoint/churn-api", json={"required": 1, "reason": "prod"}).status_code == 200
    assert admin.put("/approvals/policies/model/churn", json={"required": 1}).json()["target"] == "model:churn"
    refused = mle.post("/endpoints/churn-api/deploy", json={"model_ref": "churn/1"})
    assert refused.status_code == 403
    assert "needs 1 approval(s) under the approval policy of endpoint 'churn-api'" in refused.json()["error"]
    made = ds.post("/approvals", json={"model_ref": "churn/1", "endpoint": "churn-api", "reason": "first release"})
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    decided = appr.post(f"/approvals/{rid}/approve", json={"reason": "gates and slices checked"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert decided.json()["approvers"] == ["approver"] and decided.json()["author"] == "ana"
    deployed = mle.post("/endpoints/churn-api/deploy", json={"model_ref": "churn/1"})
    assert deployed.status_code == 201, deployed.text
    assert viewer.get("/models/churn/aliases").json()[0] == {**viewer.get("/models/churn/aliases").json()[0],
                                                            "alias": "champion", "version": 1}
    listed = viewer.get("/approvals", params={"status": "approved"}).json()
    assert [r["id"] for r in listed["items"]] == [rid]
    events = viewer.get("/audit", params={"action": "approval.approve"}).json()["items"]
    assert events[0]["actor"] == "approver" and events[0]["reason"] == "gates and slices checked"
    # No token secret anywhere in the audit log.
    dump = json.dumps(admin.get("/audit", params={"limit": 500}).json())
    assert not any(secret in dump for secret in live.tokens.values())
    # The random part alone (the format is lml_<id>_<secret>; the secret itself may contain "_").
    assert not any(secret.split("_", 2)[2] in dump for secret in live.tokens.values())


def test_the_author_cannot_approve_their_own_version(live: Live) -> None:
    from loopml.register import register_model

    gov_seed.seed(live.ws, deploy_v1=False)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    df = gov_seed.frame()
    version = register_model(live.ws.as_actor("approver"), "churn", model.fit(df[["a", "b"]], df.y),
                             gates_passed=True).version
    rid = live.client("ml_engineer").post("/approvals", json={"model_ref": f"churn/{version}"}).json()["id"]
    refused = live.client("approver").post(f"/approvals/{rid}/approve", json={"reason": "mine"})
    assert refused.status_code == 403
    assert "is the author of model churn/3 and may not approve it (separation of duties" in refused.json()["error"]


# (method, path, body, the least role that may)
GUARDED = [
    ("PUT", "/approvals/policies/model/churn", {"required": 1}, "admin"),
    ("POST", "/approvals/1/override", {"reason": "x"}, "admin"),
    ("POST", "/approvals/1/approve", {"reason": "x"}, "approver"),
    ("POST", "/approvals/1/reject", {"reason": "x"}, "approver"),
    ("POST", "/approvals", {"model_ref": "churn/1"}, "data_scientist"),
    ("PATCH", "/models/churn/versions/1/card", {"owner": "x"}, "data_scientist"),
    ("PUT", "/privacy/retention/churn-api", {"days": 30}, "admin"),
    ("POST", "/privacy/retention/apply", {}, "admin"),
    ("POST", "/privacy/erase", {"column": "f_customer_id", "value": "C1"}, "admin"),
]


@pytest.mark.parametrize("role", ROLES[:-1])
def test_each_role_is_refused_the_governance_actions_it_may_not_do(live_sqlite: Live, role: str) -> None:
    client = live_sqlite.client(role)
    refused = [(m, p) for m, p, body, least in GUARDED if ROLES.index(role) < ROLES.index(least)]
    assert refused  # every role below admin is refused something here
    for method, path, body, least in GUARDED:
        if ROLES.index(role) >= ROLES.index(least):
            continue
        response = client.request(method, path, json=body)
        assert response.status_code == 403, (role, method, path, response.text)
        assert f"user '{role}'" in response.json()["error"]
    # and every role reads
    assert client.get("/approvals").status_code == 200
    assert client.get("/approvals/policies").status_code == 200


def test_no_token_gets_401_on_governance_routes(live_sqlite: Live) -> None:
    anonymous = live_sqlite.client(None)
    for path in ("/approvals", "/privacy/retention", "/trace/requests/x", "/models/churn/versions/1/card"):
        assert anonymous.get(path).status_code == 401


def test_cards_traces_and_privacy_over_http(live: Live) -> None:
    s = gov_seed.seed(live.ws)
    viewer, ds, admin = live.client("viewer"), live.client("data_scientist"), live.client("admin")
    edited = ds.patch("/models/churn/versions/1/card", json={"owner": "risk-team", "intended_use": "churn scoring"})
    assert edited.status_code == 200 and edited.json()["fields"]["owner"] == "risk-team"
    md = viewer.get("/models/churn/versions/1/card", params={"format": "md"})
    html = viewer.get("/models/churn/versions/1/card", params={"format": "html"})
    assert md.headers["content-type"].startswith("text/markdown") and "# Model card: churn/1" in md.text
    assert html.headers["content-type"].startswith("text/html") and "churn scoring" in html.text
    for text in (md.text, html.text):
        assert "S3CRET" not in text
    trace = viewer.get(f"/trace/requests/{s.request_ids[0]}", params={"endpoint": "churn-api"})
    assert trace.status_code == 200, trace.text
    assert trace.json()["summary"]["model_version"]["ref"] == "churn/1"
    assert trace.json()["summary"]["rollout"]["created_by"] == "mel"
    dot = viewer.get(f"/trace/requests/{s.request_ids[0]}", params={"format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz") and "digraph" in dot.text
    mermaid = viewer.get(f"/trace/datasets/{s.dataset}", params={"format": "mermaid"})
    assert mermaid.text.startswith("flowchart LR")
    assert viewer.get(f"/trace/datasets/{s.dataset}").json()["summary"]["endpoints"] == ["churn-api"]
    assert viewer.get("/trace/requests/nope").status_code == 404
    # data protection
    assert admin.put("/privacy/retention/churn-api", json={"days": 30}).json()["days"] == 30
    assert admin.post("/privacy/retention/apply", json={}).json()[0]["prediction_rows"] == 0
    erased = admin.post("/privacy/erase", json={"column": "f_customer_id", "value": "C1"})
    assert erased.status_code == 200 and erased.json()["prediction_rows"] == 2
    event = viewer.get("/audit", params={"action": "privacy.erase"}).json()["items"][0]
    assert event["actor"] == "admin" and '"C1"' not in json.dumps(event)
