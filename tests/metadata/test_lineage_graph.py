"""The lineage graph: edges, walks in both directions, node names, exports."""

from __future__ import annotations

import json

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Dataset, DatasetVersion, Run
from loopml.metadata.lineage import lineage, register_node_type, walk


def _dataset_version(ws, name: str = "weather", version: int = 1) -> None:  # type: ignore[no-untyped-def]
    with ws.store.write("tester") as tx:
        s = tx.session
        ds = s.query(Dataset).filter_by(name=name).one_or_none()
        if ds is None:
            ds = Dataset(name=name, project="default", created_at=utcnow(), created_by="tester")
            s.add(ds)
            s.flush()
        s.add(DatasetVersion(
            dataset_id=ds.id, version=version, digest=f"{version:064x}", artifact_digest="a" * 64,
            n_rows=10, n_columns=2, schema=[], profile={}, source={}, created_at=utcnow(), created_by="tester",
        ))


def _run(ws, run_id: str = "r1") -> None:  # type: ignore[no-untyped-def]
    with ws.store.write("tester") as tx:
        tx.session.add(Run(id=run_id, name="train", experiment="default", kind="pipeline", status="succeeded",
                           started_at=utcnow(), tags={}, created_by="tester"))


def _chain(ws) -> None:  # type: ignore[no-untyped-def]
    """source → weather@1 → run r1 → churn/1 → deployment d1; weather@2 → r1."""
    _dataset_version(ws, "weather", 1)
    _dataset_version(ws, "weather", 2)
    _run(ws)
    with ws.store.write("tester") as tx:
        tx.link(("source", "file.csv"), "ingested_as", ("dataset_version", "weather@1"))
        tx.link(("dataset_version", "weather@1"), "used_by", ("run", "r1"))
        tx.link(("dataset_version", "weather@2"), "used_by", ("run", "r1"))
        tx.link(("run", "r1"), "produced", ("model_version", "churn/1"))
        tx.link(("model_version", "churn/1"), "deployed_to", ("deployment", "d1"))
        tx.link(("run", "r1"), "produced", ("model_version", "churn/1"))  # idempotent


def test_walks_follow_edges_both_ways(workspace) -> None:  # type: ignore[no-untyped-def]
    _chain(workspace)
    with workspace.store.read() as s:
        down = walk(s, ("dataset_version", "weather@1"), direction="downstream")
        up = walk(s, ("deployment", "d1"), direction="upstream")
        shallow = walk(s, ("deployment", "d1"), direction="upstream", max_depth=1)
    assert [e.dst for e in down] == [("run", "r1"), ("model_version", "churn/1"), ("deployment", "d1")]
    assert {e.src for e in up} == {
        ("model_version", "churn/1"), ("run", "r1"), ("dataset_version", "weather@1"),
        ("dataset_version", "weather@2"), ("source", "file.csv"),
    }
    assert len(up) == 5  # the duplicate link was not stored twice
    assert [e.src for e in shallow] == [("model_version", "churn/1")]


def test_a_cycle_does_not_loop(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    with sqlite_workspace.store.write("tester") as tx:
        tx.link(("x", "a"), "to", ("x", "b"))
        tx.link(("x", "b"), "to", ("x", "a"))
    with sqlite_workspace.store.read() as s:
        assert len(walk(s, ("x", "a"))) == 2


def test_lineage_names_nodes_the_friendly_way(workspace) -> None:  # type: ignore[no-untyped-def]
    _chain(workspace)
    graph = lineage(workspace, "dataset_version:weather@1", direction="downstream")
    assert graph.root.key == "dataset_version:weather@1"
    assert [n.key for n in graph.nodes] == [
        "dataset_version:weather@1", "run:r1", "model_version:churn/1", "deployment:d1",
    ]
    assert graph.node("run:r1").label == "train [succeeded]"
    assert graph.root.attrs["n_rows"] == 10
    # NAME alone means the latest version; "both" walks each way from the root.
    both = lineage(workspace, "dataset_version:weather")
    assert both.root.key == "dataset_version:weather@2"
    assert "deployment:d1" in {n.key for n in both.nodes}


def test_lineage_of_an_unknown_object_lists_what_exists(workspace) -> None:  # type: ignore[no-untyped-def]
    _dataset_version(workspace, "weather", 1)
    with pytest.raises(NotFoundError, match=r"dataset 'weathr' not found; datasets: weather"):
        lineage(workspace, "dataset_version:weathr@1")
    with pytest.raises(NotFoundError, match=r"dataset 'weather' has no version 7; versions: 1"):
        lineage(workspace, "dataset_version:weather@7")
    with pytest.raises(NotFoundError, match=r"run 'nope' not found"):
        lineage(workspace, "run:nope")
    with pytest.raises(NotFoundError, match=r"model 'churn' not found"):
        lineage(workspace, "model:churn@champion")



def test_dataset_is_short_for_dataset_version(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    _chain(sqlite_workspace)
    graph = lineage(sqlite_workspace, "dataset:weather@1", direction="downstream")
    assert graph.root.key == "dataset_version:weather@1"
    assert ("run", "r1") in {e.dst for e in graph.edges}
    with pytest.raises(NotFoundError, match=r"dataset 'weathr' not found; datasets: weather"):
        lineage(sqlite_workspace, "dataset:weathr@1")


def test_an_unknown_node_with_no_edges_is_not_found_not_an_empty_graph(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    _chain(sqlite_workspace)
    with pytest.raises(NotFoundError, match=r"lineage object 'datset:weather@1': nothing is recorded .*node types: .*dataset_version"):
        lineage(sqlite_workspace, "datset:weather@1")
    # A type no resolver knows still works when edges name the node.
    assert lineage(sqlite_workspace, "deployment:d1", direction="upstream").edges

def test_lineage_rejects_bad_input(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=r"lineage object 'churn' is invalid: use TYPE:ID"):
        lineage(sqlite_workspace, "churn")
    with pytest.raises(ValidationError, match=r"direction 'sideways' is invalid"):
        lineage(sqlite_workspace, "x:1", direction="sideways")


def test_a_node_type_from_a_later_stage_plugs_in(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    register_node_type(
        "test_endpoint",
        resolve=lambda s, oid: ("test_endpoint", oid.lower()),
        describe=lambda s, ids: {i: (f"endpoint {i}", {"live": True}) for i in ids},
    )
    with sqlite_workspace.store.write("tester") as tx:
        tx.link(("model_version", "churn/1"), "served_by", ("test_endpoint", "web"))
    graph = lineage(sqlite_workspace, "test_endpoint:WEB", direction="upstream")
    assert graph.root.label == "endpoint web"
    assert [e.src for e in graph.edges] == [("model_version", "churn/1")]


def test_exports(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    _chain(sqlite_workspace)
    graph = lineage(sqlite_workspace, "run:r1", direction="upstream")
    data = json.loads(graph.to_json())
    assert data["root"] == "run:r1" and data["direction"] == "upstream"
    assert {"src": "dataset_version:weather@1", "relation": "used_by", "dst": "run:r1"} in data["edges"]
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {")
    assert '"dataset_version:weather@1" -> "run:r1" [label="used_by"];' in dot
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert 'n0["run: train [succeeded]"]' in mermaid
    assert "-->|used_by| n0" in mermaid
