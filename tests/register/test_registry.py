"""Registering versions, resolving references, editing metadata; audit and lineage come along."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, utcnow
from loopml.metadata._orm import Dataset, DatasetVersion, Run
from loopml.metadata.audit import audit_log, verify_audit
from loopml.metadata.lineage import lineage
from loopml.register import (
    get_model,
    list_models,
    list_versions,
    load_model,
    register_model,
    resolve,
    update_version,
)

SIGNATURE = {"version": 1, "columns": {"x": {"type": "float", "nullable": False}}, "target": "y"}


def _fitted() -> LogisticRegression:
    return LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])


def _inputs(ws) -> int:  # type: ignore[no-untyped-def]
    """A run 'r1' and a dataset version weather@1; returns the version's row id."""
    with ws.store.write("tester") as tx:
        s = tx.session
        s.add(Run(id="r1", name="train", experiment="default", kind="pipeline", status="succeeded",
                  started_at=utcnow(), tags={}, git_commit="abc123", git_dirty=False, created_by="tester"))
        ds = Dataset(name="weather", project="default", created_at=utcnow(), created_by="tester")
        s.add(ds)
        s.flush()
        dv = DatasetVersion(dataset_id=ds.id, version=1, digest="d" * 64, artifact_digest="a" * 64, n_rows=4,
                            n_columns=2, schema=[], profile={}, source={}, created_at=utcnow(), created_by="tester")
        s.add(dv)
        s.flush()
        return dv.id


def test_register_and_load_round_trip(workspace) -> None:  # type: ignore[no-untyped-def]
    dv_id = _inputs(workspace)
    model = _fitted()
    rec = register_model(
        workspace, "churn", model, signature=SIGNATURE, profile={"x": {"mean": 1.5}},
        evaluation={"auc": np.float64(0.9), "logloss": float("nan"), "n": np.int64(4)},
        gate_report={"passed": True}, gates_passed=True, run_id="r1", dataset_versions=[dv_id],
        tags={"team": "growth"}, description="first", aliases=["champion"],
    )
    assert (rec.name, rec.version, rec.ref, rec.aliases) == ("churn", 1, "churn/1", ("champion",))
    assert rec.task == "classification"  # inferred from the estimator
    assert rec.evaluation == {"auc": 0.9, "logloss": None, "n": 4}  # NaN stored as null
    assert (rec.git_commit, rec.git_dirty) == ("abc123", False)  # taken from the run
    assert rec.dataset_versions == ("weather@1",)
    assert resolve(workspace, "churn/1") == rec
    loaded = load_model(workspace, "churn@champion")
    assert (loaded.name, loaded.version, loaded.task, loaded.signature) == ("churn", 1, "classification", SIGNATURE)
    np.testing.assert_array_equal(loaded.estimator.predict([[0.0], [3.0]]), model.predict([[0.0], [3.0]]))
    assert rec.to_dict()["ref"] == "churn/1" and rec.to_dict()["aliases"] == ["champion"]

    graph = lineage(workspace, "model:churn@champion", direction="upstream")
    assert {(":".join(e.src), e.relation) for e in graph.edges} == {
        ("dataset_version:weather@1", "used_by"), ("run:r1", "produced"),
    }
    assert [e.action for e in audit_log(workspace, newest_first=False)] == [
        "model.create", "model.register", "model.alias",
    ]
    assert verify_audit(workspace) == []


def test_versions_count_up_and_references_resolve(workspace) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        register_model(workspace, "churn", {"weights": [i]}, flavor="custom")
    assert [r.version for r in list_versions(workspace, "churn")] == [1, 2, 3]
    assert resolve(workspace, "churn").version == 3
    assert resolve(workspace, "churn@latest").version == 3
    assert resolve(workspace, ModelRef(name="churn", version=2)).version == 2
    assert load_model(workspace, "churn/2").estimator == {"weights": [1]}
    model = get_model(workspace, "churn")
    assert (model.latest_version, model.n_versions, model.aliases) == (3, 3, {})
    assert [m.name for m in list_models(workspace)] == ["churn"]
    assert len(audit_log(workspace, action="model.create")) == 1  # created once, not per version


def test_unknown_model_alias_and_version_are_named(workspace) -> None:  # type: ignore[no-untyped-def]
    register_model(workspace, "churn", {"w": 1}, flavor="custom", aliases=["champion", "challenger"])
    with pytest.raises(NotFoundError, match=r"^model 'churm' not found; models: churn$"):
        resolve(workspace, "churm@champion")
    with pytest.raises(NotFoundError, match=r"^model 'churn' has no alias 'prod'; aliases: challenger, champion$"):
        resolve(workspace, "churn@prod")
    with pytest.raises(NotFoundError, match=r"^model 'churn' has no version 9; versions: 1$"):
        load_model(workspace, "churn/9")
    with pytest.raises(NotFoundError, match=r"model 'nope' not found"):
        list_versions(workspace, "nope")
    with pytest.raises(ValidationError, match=r"version must be a positive integer"):
        resolve(workspace, "churn/x")


def test_bad_inputs_are_refused_before_anything_is_stored(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = sqlite_workspace
    with pytest.raises(ValidationError, match=r"model '\.\./x' is invalid"):
        register_model(ws, "../x", {})
    with pytest.raises(ValidationError, match=r"signature column 'x' has type 'double'; allowed: int, float"):
        register_model(ws, "m", {}, signature={"version": 1, "columns": {"x": {"type": "double"}}})
    with pytest.raises(ValidationError, match=r"signature must be a data contract"):
        register_model(ws, "m", {}, signature={"x": "float"})
    with pytest.raises(ValidationError, match=r"alias '3' is invalid: an alias cannot be a number"):
        register_model(ws, "m", {}, aliases=["3"])
    with pytest.raises(ValidationError, match=r"alias 'latest' is reserved"):
        register_model(ws, "m", {}, aliases=["latest"])
    with pytest.raises(ValidationError, match=r"evaluation.fn is not JSON-serializable"):
        register_model(ws, "m", {}, evaluation={"fn": object()})
    with pytest.raises(NotFoundError, match=r"run 'ghost' not found"):
        register_model(ws, "m", {}, run_id="ghost")
    with pytest.raises(NotFoundError, match=r"dataset 'weather' not found"):
        register_model(ws, "m", {}, dataset_versions=["weather@1"])
    assert list_models(ws) == []  # the failed registrations left no model behind
    assert audit_log(ws) == []


def test_update_version_merges_tags_and_is_audited(workspace) -> None:  # type: ignore[no-untyped-def]
    register_model(workspace, "churn", {"w": 1}, flavor="custom", tags={"a": 1, "b": 2})
    rec = update_version(workspace, "churn", 1, tags={"b": None, "c": 3}, description="tuned",
                         gates_passed=False, gate_report={"passed": False}, reason="review")
    assert (rec.tags, rec.description, rec.gates_passed) == ({"a": 1, "c": 3}, "tuned", False)
    assert resolve(workspace, "churn/1").tags == {"a": 1, "c": 3}
    (event,) = audit_log(workspace, action="model.update")
    assert event.object == "model_version:churn/1" and event.reason == "review"
    assert event.before["tags"] == {"a": 1, "b": 2} and event.after["description"] == "tuned"
    update_version(workspace, "churn", 1, description="tuned")  # no change: no event
    assert len(audit_log(workspace, action="model.update")) == 1
    with pytest.raises(NotFoundError, match="model 'churn' has no version 2"):
        update_version(workspace, "churn", 2, description="x")


def test_reuse_identical_returns_the_version_with_the_same_bytes(workspace) -> None:  # type: ignore[no-untyped-def]
    first = register_model(workspace, "churn", {"w": 1}, flavor="custom")
    register_model(workspace, "churn", {"w": 2}, flavor="custom")
    again = register_model(workspace, "churn", {"w": 1}, flavor="custom", reuse_identical=True, aliases=["champion"])
    assert (again.version, again.aliases) == (first.version, ("champion",))
    fresh = register_model(workspace, "churn", {"w": 3}, flavor="custom", reuse_identical=True)
    assert fresh.version == 3  # numbering continues after a reuse
    assert [v.version for v in list_versions(workspace, "churn")] == [1, 2, 3]
    assert verify_audit(workspace) == []


def test_first_registration_creates_the_model_and_is_audited(workspace) -> None:  # type: ignore[no-untyped-def]
    record = register_model(workspace, "fresh", {"w": 1}, flavor="custom")
    assert record.version == 1 and get_model(workspace, "fresh").latest_version == 1
    actions = [e.action for e in audit_log(workspace, newest_first=False)]
    assert actions[-2:] == ["model.create", "model.register"]
