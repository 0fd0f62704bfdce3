"""Approval policies: N approvers who are not the author before champion moves or production traffic."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.deploy import deploy, promote, rollback
from loopml.governance.approvals import (
    approve,
    get_request,
    list_requests,
    override,
    reject,
    request_approval,
    set_policy,
)
from loopml.kernel.exceptions import AlreadyExistsError, PermissionDenied, ValidationError
from loopml.metadata.audit import audit_log
from loopml.register import list_aliases, register_model, set_alias


def _model():  # type: ignore[no-untyped-def]
    x = pd.DataFrame({"a": np.arange(12.0)})
    return LogisticRegression().fit(x, (x.a > 5).astype(int))


@pytest.fixture
def two_versions(workspace):  # type: ignore[no-untyped-def]
    ana = workspace.as_actor("ana")
    model = _model()
    for _ in range(2):
        register_model(ana, "churn", model, gates_passed=True)
    return workspace


def test_no_policy_needs_no_approval(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    register_model(sqlite_workspace, "churn", _model(), gates_passed=True)
    assert set_alias(sqlite_workspace, "churn", "champion", 1).version == 1


def test_champion_needs_n_approvals_from_non_authors_and_everything_is_audited(two_versions) -> None:  # type: ignore[no-untyped-def]
    ws = two_versions
    set_policy(ws.as_actor("root"), "model:churn", 2, reason="SOX")
    with pytest.raises(PermissionDenied, match=r"moving churn@champion to version 1 needs 2 approval\(s\) "
                                               r"under the approval policy of model 'churn', and model churn/1 has 0"):
        set_alias(ws, "churn", "champion", 1)
    req = request_approval(ws.as_actor("ana"), "churn/1", reason="ready")
    with pytest.raises(PermissionDenied, match="user 'ana' is the author of model churn/1 and may not approve it"):
        approve(ws.as_actor("ana"), req.id, reason="mine")
    assert approve(ws.as_actor("bob"), req.id, reason="slices ok").status == "pending"
    with pytest.raises(AlreadyExistsError, match="already decided"):
        approve(ws.as_actor("bob"), req.id, reason="again")
    with pytest.raises(PermissionDenied, match=r"has 1 \(bob\)"):
        set_alias(ws, "churn", "champion", 1)
    done = approve(ws.as_actor("eve"), req.id, reason="fairness ok")
    assert (done.status, done.approvers, done.required) == ("approved", ["bob", "eve"], 2)
    assert set_alias(ws, "churn", "champion", 1).version == 1
    # version 2 has no approvals of its own
    with pytest.raises(PermissionDenied, match="churn/2 has 0"):
        set_alias(ws, "churn", "champion", 2)
    actions = [(e.action, e.actor, e.reason) for e in audit_log(ws, newest_first=False)
               if e.action.startswith("approval.")]
    assert actions == [("approval.policy", "root", "SOX"), ("approval.request", "ana", "ready"),
                       ("approval.approve", "bob", "slices ok"), ("approval.approve", "eve", "fairness ok")]


def test_registering_straight_to_champion_is_refused_under_a_policy(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    set_policy(sqlite_workspace, "model:churn", 1)
    with pytest.raises(PermissionDenied, match="needs 1 approval"):
        register_model(sqlite_workspace, "churn", _model(), aliases=["champion"], gates_passed=True)
    register_model(sqlite_workspace, "churn", _model(), aliases=["challenger"], gates_passed=True)  # unprotected


def test_endpoint_traffic_needs_approval_and_admin_override_is_audited(two_versions) -> None:  # type: ignore[no-untyped-def]
    ws = two_versions
    set_policy(ws, "endpoint:churn-api", 1)
    with pytest.raises(PermissionDenied, match="sending endpoint 'churn-api' traffic to churn/1 needs 1 approval"):
        deploy(ws, "churn-api", "churn/1")
    req = request_approval(ws, "churn/1", endpoint="churn-api")
    over = override(ws.as_actor("root"), req.id, reason="incident 42")
    assert over.status == "overridden"
    assert deploy(ws, "churn-api", "churn/1").status == "promoted"
    event = audit_log(ws, action="approval.override")[0]
    assert (event.actor, event.reason, event.after["model_version"]) == ("root", "incident 42", "churn/1")
    with pytest.raises(ValidationError, match="is overridden: it takes no more decisions"):
        approve(ws.as_actor("bob"), req.id, reason="late")


def test_rejection_closes_the_request_and_its_approvals_stop_counting(two_versions) -> None:  # type: ignore[no-untyped-def]
    ws = two_versions
    set_policy(ws, "model:churn", 1)
    req = request_approval(ws, "churn/2")
    with pytest.raises(ValidationError, match="needs a reason"):
        reject(ws.as_actor("eve"), req.id, reason="  ")
    rejected = reject(ws.as_actor("eve"), req.id, reason="gap on region=south")
    assert rejected.status == "rejected"
    with pytest.raises(ValidationError, match="is rejected"):
        approve(ws.as_actor("bob"), req.id, reason="ok")
    with pytest.raises(PermissionDenied):
        set_alias(ws, "churn", "champion", 2)
    again = request_approval(ws, "churn/2", reason="fixed the data")
    approve(ws.as_actor("bob"), again.id, reason="ok now")
    assert set_alias(ws, "churn", "champion", 2).version == 2
    assert [r.status for r in list_requests(ws, model="churn")] == ["approved", "rejected"]
    assert get_request(ws, req.id).decisions[0].reason == "gap on region=south"


def test_promotion_needs_approval_but_rollback_never_does(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = sqlite_workspace
    model = _model()
    register_model(ws.as_actor("ana"), "churn", model, gates_passed=True)
    register_model(ws.as_actor("ana"), "churn", model, gates_passed=True)
    deploy(ws, "churn-api", "churn/1")
    set_policy(ws, "model:churn", 1)
    deploy(ws, "churn-api", "churn/2", strategy="canary")  # no alias moves yet: no approval needed
    with pytest.raises(PermissionDenied, match="moving churn@champion to version 2"):
        promote(ws, "churn-api")
    assert rollback(ws, "churn-api", reason="bad canary").status == "rolled_back"
    assert {a.alias: a.version for a in list_aliases(ws, "churn")}["champion"] == 1


def test_policy_input_is_validated(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="use model:NAME or endpoint:NAME"):
        set_policy(sqlite_workspace, "churn", 1)
    with pytest.raises(ValidationError, match=r"integer in 0\.\.20"):
        set_policy(sqlite_workspace, "model:churn", 21)
    assert json.dumps(set_policy(sqlite_workspace, "endpoint:x", 0).to_dict())
