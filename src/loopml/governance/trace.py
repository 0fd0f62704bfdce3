"""End-to-end lineage: from one prediction back to its data, and from a data version forward.

    t = trace_request(ws, "req-42", endpoint="churn-api")
    t.summary["model_version"]["ref"], t.summary["run"]["git_commit"], t.summary["approvals"]
    print(t.to_mermaid())                         # or to_dot(), to_dict()
    d = trace_dataset(ws, "weather@2")            # every model, deployment, batch, prediction window downstream

From a request id: the prediction log row → its endpoint and model version →
the traffic change and the rollout that put that version in service at that
moment → the version (artifact digest, author) → its run (params, git commit,
dirty flag) → the exact dataset versions (digest, source) → the gate report →
the approvals. The graph reuses :class:`loopml.metadata.lineage.LineageGraph`
(and so its JSON, DOT and Mermaid exporters). Feature values of the logged
row are never copied into the trace (only their names): a trace is shared
more widely than the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from loopml.governance._redact import scrub, scrub_text
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import check_name
from loopml.metadata._orm import (
    ApprovalDecision,
    ApprovalRequest,
    Dataset,
    DatasetVersion,
    Endpoint,
    Rollout,
    TrafficChange,
)
from loopml.metadata.lineage import Edge, LineageGraph, LineageNode, lineage

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = ["TraceResult", "trace_dataset", "trace_request"]

_MAX_REQUEST_ID = 256


@dataclass(frozen=True)
class TraceResult:
    """A trace: a summary for people and scripts, and the graph for the exporters."""

    summary: dict[str, Any]
    graph: LineageGraph

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "graph": self.graph.to_dict()}

    def to_dot(self) -> str:
        return self.graph.to_dot()

    def to_mermaid(self) -> str:
        return self.graph.to_mermaid()


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: dict[Edge, None] = {}

    def node(self, type_: str, id_: str, label: str | None = None, **attrs: Any) -> tuple[str, str]:
        key = f"{type_}:{id_}"
        if key not in self.nodes:
            self.nodes[key] = LineageNode(type_, str(id_), label or str(id_), attrs)
        return (type_, str(id_))

    def edge(self, src: tuple[str, str], relation: str, dst: tuple[str, str]) -> None:
        self.edges.setdefault(Edge(src, relation, dst))

    def merge(self, graph: LineageGraph) -> None:
        for n in graph.nodes:
            self.nodes.setdefault(n.key, n)
        for e in graph.edges:
            self.edges.setdefault(e)

    def graph(self, root: tuple[str, str], direction: str) -> LineageGraph:
        # Source nodes may be URLs with credentials: every id, label and attribute is scrubbed.
        def clean(n: LineageNode) -> LineageNode:
            return LineageNode(n.type, scrub_text(n.id), scrub_text(n.label), scrub(n.attrs))

        def end(node: tuple[str, str]) -> tuple[str, str]:
            return (node[0], scrub_text(node[1]))

        nodes = {k: clean(n) for k, n in self.nodes.items()}
        edges = tuple(dict.fromkeys(Edge(end(e.src), e.relation, end(e.dst)) for e in self.edges))
        return LineageGraph(root=nodes[f"{root[0]}:{root[1]}"], direction=direction, nodes=tuple(nodes.values()),
                            edges=edges)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _find_prediction(ws: Workspace, request_id: str, endpoint: str | None) -> tuple[str, list[dict[str, Any]]]:
    from loopml.predictions import list_endpoints, open_view

    known = list_endpoints(ws)
    candidates = [endpoint] if endpoint is not None else known
    for ep in candidates:
        if ep not in known:
            raise NotFoundError(f"endpoint {ep!r} has no logged predictions; known endpoints: "
                                f"{', '.join(known) or 'none yet'}")
        con = open_view(ws, ep)
        try:
            # Through Arrow: DuckDB's Python rows of TIMESTAMPTZ would need pytz.
            rows = con.sql("SELECT * FROM predictions WHERE request_id = $rid ORDER BY row",
                           params={"rid": request_id}).to_arrow_table().to_pylist()
        finally:
            con.close()
        if rows:
            return ep, rows
    where = f"endpoint {endpoint!r}" if endpoint else f"any endpoint ({', '.join(known) or 'none yet'})"
    raise NotFoundError(f"request id {request_id!r} is not in the prediction log of {where}")


def _in_service(ws: Workspace, endpoint: str, version: int, ts: datetime) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The traffic change in force at ``ts`` and the rollout that put ``version`` in service."""
    with ws.store.read() as s:
        ep = s.execute(select(Endpoint).where(Endpoint.name == endpoint)).scalar_one_or_none()
        if ep is None:
            return None, None
        change = s.execute(
            select(TrafficChange).where(TrafficChange.endpoint_id == ep.id, TrafficChange.ts <= ts)
            .order_by(TrafficChange.ts.desc(), TrafficChange.revision.desc()).limit(1)
        ).scalar_one_or_none()
        rollout = None
        if change is not None and change.rollout_id is not None:
            rollout = s.get(Rollout, change.rollout_id)
            if rollout is not None and version not in (rollout.candidate_version, rollout.baseline_version):
                rollout = None
        if rollout is None:
            rollout = s.execute(
                select(Rollout).where(Rollout.endpoint_id == ep.id, Rollout.candidate_version == version,
                                      Rollout.created_at <= ts)
                .order_by(Rollout.created_at.desc(), Rollout.id.desc()).limit(1)
            ).scalar_one_or_none()
        traffic = None if change is None else {
            "revision": change.revision, "policy": change.policy, "rollout_id": change.rollout_id,
            "actor": change.actor, "reason": change.reason, "ts": change.ts.isoformat()}
        out = None if rollout is None else {
            "id": rollout.id, "strategy": rollout.strategy, "status": rollout.status,
            "baseline_version": rollout.baseline_version, "candidate_version": rollout.candidate_version,
            "created_by": rollout.created_by, "created_at": rollout.created_at.isoformat(),
            "ended_at": rollout.ended_at.isoformat() if rollout.ended_at else None,
            "override_reason": rollout.override_reason}
        return traffic, out


def approvals_of(ws: Workspace, model: str, version: int) -> list[dict[str, Any]]:
    """The approval requests of one model version with their decisions, oldest first."""
    with ws.store.read() as s:
        requests = s.execute(select(ApprovalRequest).where(
            ApprovalRequest.model_name == model, ApprovalRequest.model_version == version)
            .order_by(ApprovalRequest.id)).scalars().all()
        out = []
        for r in requests:
            decisions = s.execute(select(ApprovalDecision).where(ApprovalDecision.request_id == r.id)
                                  .order_by(ApprovalDecision.id)).scalars().all()
            out.append({"id": r.id, "endpoint": r.endpoint, "status": r.status, "requested_by": r.requested_by,
                        "reason": r.reason, "created_at": r.created_at.isoformat(),
                        "decisions": [{"actor": d.actor, "decision": d.decision, "reason": d.reason,
                                       "ts": d.ts.isoformat()} for d in decisions]})
        return out


def _datasets(ws: Workspace, refs: list[str]) -> list[dict[str, Any]]:
    wanted = {}
    for ref in refs:
        name, _, v = ref.partition("@")
        if v.isdigit():
            wanted[(name, int(v))] = ref
    if not wanted:
        return []
    out = []
    with ws.store.read() as s:
        rows = s.execute(select(DatasetVersion, Dataset.name).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                         .where(Dataset.name.in_({n for n, _ in wanted}))).all()
        for dv, name in rows:
            if (name, dv.version) in wanted:
                out.append({"ref": f"{name}@{dv.version}", "digest": dv.digest, "n_rows": dv.n_rows,
                            "source": dv.source, "created_at": dv.created_at.isoformat(),
                            "created_by": dv.created_by})
    return sorted(out, key=lambda d: d["ref"])


def _gates(record: Any) -> dict[str, Any]:
    report = record.gate_report or {}
    outcomes = report.get("outcomes") if isinstance(report, dict) else None
    return {"passed": record.gates_passed, "report": report,
            "n_rules": len(outcomes) if isinstance(outcomes, list) else None}


def trace_request(ws: Workspace, request_id: str, *, endpoint: str | None = None) -> TraceResult:
    """Everything behind one logged prediction, as a summary and a graph rooted at it.

    Raises:
        NotFoundError: the request id is not in the log (of ``endpoint``, or of any).
        ValidationError: an empty or overlong request id.
    """
    from loopml.register import resolve
    from loopml.tracking import get_run

    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > _MAX_REQUEST_ID:
        raise ValidationError(f"request id must be 1..{_MAX_REQUEST_ID} characters", field="request_id",
                              rule="length")
    if endpoint is not None:
        check_name(endpoint, "endpoint")
    ep, rows = _find_prediction(ws, request_id, endpoint)
    first = rows[0]
    ts = first["ts"]
    ts = ts.astimezone(UTC) if isinstance(ts, datetime) and ts.tzinfo else (
        ts.replace(tzinfo=UTC) if isinstance(ts, datetime) else datetime.now(UTC))
    model, version = str(first["model_name"]), int(first["model_version"])
    b = _Builder()
    prediction = {
        "request_id": request_id, "endpoint": ep, "ts": ts.isoformat(), "rows": len(rows),
        "model_name": model, "model_version": version, "status": first.get("status"),
        "latency_ms": first.get("latency_ms"),
        "prediction": [r.get("prediction") for r in rows],
        "features": sorted(k for k in first if k.startswith("f_")),
    }
    root = b.node("prediction", request_id, f"request {request_id}", endpoint=ep, ts=ts.isoformat(),
                  status=prediction["status"])
    b.edge(b.node("endpoint", ep), "logged", root)
    record = resolve(ws, f"{model}/{version}")
    mv = b.node("model_version", record.ref, record.ref, artifact_digest=record.artifact_digest,
                created_by=record.created_by, gates_passed=record.gates_passed)
    b.edge(mv, "predicted", root)
    traffic, rollout = _in_service(ws, ep, version, ts)
    if rollout is not None:
        ro = b.node("rollout", str(rollout["id"]), f"rollout {rollout['id']} ({rollout['strategy']})",
                    created_by=rollout["created_by"], status=rollout["status"])
        b.edge(mv, "rolled_out_by", ro)
        b.edge(ro, "in_service_for", root)
    b.merge(lineage(ws, ("model_version", record.ref), direction="upstream"))
    run = None
    if record.run_id:
        try:
            r = get_run(ws, record.run_id)
            run = {"id": r.id, "name": r.name, "experiment": r.experiment, "status": r.status,
                   "params": dict(r.params), "metrics": dict(r.metrics), "git_commit": r.git_commit,
                   "git_dirty": r.git_dirty, "started_at": r.started_at.isoformat(), "created_by": r.created_by}
        except NotFoundError:
            run = {"id": record.run_id, "missing": True}
    gates = _gates(record)
    gate_node = b.node("gate_report", record.ref, "gates " + ("passed" if record.gates_passed else
                                                              "failed" if record.gates_passed is False else "n/a"),
                       passed=record.gates_passed)
    b.edge(gate_node, "checked", mv)
    approvals = approvals_of(ws, model, version)
    for a in approvals:
        approvers = [d["actor"] for d in a["decisions"] if d["decision"] == "approve"]
        node = b.node("approval", str(a["id"]), f"approval {a['id']} ({a['status']})", status=a["status"],
                      approvers=approvers)
        b.edge(mv, "approval", node)
    summary = {
        "request_id": request_id, "endpoint": ep, "prediction": prediction,
        "model_version": {"ref": record.ref, "artifact_digest": record.artifact_digest,
                          "created_by": record.created_by, "created_at": record.created_at.isoformat(),
                          "git_commit": record.git_commit, "git_dirty": record.git_dirty,
                          "aliases": list(record.aliases)},
        "run": run,
        "code": {"git_commit": (run or {}).get("git_commit") or record.git_commit,
                 "git_dirty": (run or {}).get("git_dirty") if run else record.git_dirty},
        "datasets": _datasets(ws, list(record.dataset_versions)),
        "gates": gates,
        "approvals": approvals,
        "traffic": traffic,
        "rollout": rollout,
    }
    return TraceResult(summary=scrub(summary), graph=b.graph(root, "upstream"))


def trace_dataset(ws: Workspace, ref: str) -> TraceResult:
    """Everything downstream of a dataset version: models, deployments, rollouts, prediction batches,
    and the online prediction windows of each endpoint version that was trained on it."""
    from loopml.predictions import list_endpoints, open_view

    graph = lineage(ws, f"dataset_version:{ref}" if not ref.startswith("dataset_version:") else ref,
                    direction="downstream")
    by_type: dict[str, list[str]] = {}
    for n in graph.nodes:
        if n.key != graph.root.key:
            by_type.setdefault(n.type, []).append(n.id)
    b = _Builder()
    b.merge(graph)
    versions = set(by_type.get("model_version", []))
    windows = []
    logged = set(list_endpoints(ws))
    for endpoint in by_type.get("endpoint", []):
        if endpoint not in logged:
            continue
        con = open_view(ws, endpoint)
        try:
            rows = [tuple(r.values()) for r in con.sql(
                "SELECT model_name, model_version, count(*) AS n, min(ts) AS lo, max(ts) AS hi FROM predictions "
                "GROUP BY 1, 2 ORDER BY 2").to_arrow_table().to_pylist()]
        finally:
            con.close()
        for name, ver, count, lo, hi in rows:
            ref_v = f"{name}/{ver}"
            if ref_v not in versions:
                continue
            windows.append({"endpoint": endpoint, "model_version": ref_v, "predictions": int(count),
                            "first": _iso(lo), "last": _iso(hi)})
            node = b.node("prediction_window", f"{endpoint}:{ref_v}", f"{count} predictions on {endpoint}",
                          predictions=int(count))
            b.edge(("model_version", ref_v), "predicted", node)
            b.edge(("endpoint", endpoint), "logged", node)
    summary = {
        "dataset_version": graph.root.id,
        "models": sorted(by_type.get("model_version", [])),
        "runs": sorted(by_type.get("run", [])),
        "endpoints": sorted(by_type.get("endpoint", [])),
        "rollouts": sorted(by_type.get("rollout", []), key=lambda x: (len(x), x)),
        "prediction_batches": sorted(by_type.get("prediction_batch", [])),
        "prediction_windows": windows,
    }
    return TraceResult(summary=scrub(summary), graph=b.graph((graph.root.type, graph.root.id), "downstream"))
