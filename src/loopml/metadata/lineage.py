"""The lineage graph: add edges, walk upstream or downstream, export the result.

Nodes are ``(type, id)`` pairs whose ids are the immutable references users
already know: ``dataset_version:weather@2``, ``model_version:churn/3``,
``run:<run id>``. :func:`parse_node` canonicalises what a user types
(``model:churn@champion``, ``dataset_version:weather``, a row id) into them. Node types owned by later stages (deployments,
alerts ...) plug in with :func:`register_node_type`: this module may not
import them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, utcnow
from loopml.metadata._orm import (
    Dataset,
    DatasetVersion,
    LineageEdge,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
)

if TYPE_CHECKING:
    from loopml.metadata.store import MetadataStore

__all__ = [
    "DIRECTIONS",
    "Edge",
    "LineageGraph",
    "LineageNode",
    "Node",
    "add_edge",
    "dataset_version_node",
    "lineage",
    "parse_node",
    "register_node_type",
    "walk",
]

Node = tuple[str, str]
DIRECTIONS = ("upstream", "downstream", "both")
_CHUNK = 200


class HasStore(Protocol):
    """Anything with a metadata store: a ``Workspace`` (metadata cannot import it)."""

    @property
    def store(self) -> MetadataStore: ...


@dataclass(frozen=True)
class Edge:
    src: Node
    relation: str
    dst: Node

    def to_dict(self) -> dict[str, str]:
        return {"src": f"{self.src[0]}:{self.src[1]}", "relation": self.relation, "dst": f"{self.dst[0]}:{self.dst[1]}"}


@functools.cache
def _insert_edge(dialect: str) -> Any:
    """Built once per dialect (bound parameters): compiled once, then served from the statement cache."""
    from loopml.metadata.store import dialect_insert

    return dialect_insert(dialect)(LineageEdge.__table__).on_conflict_do_nothing()


def add_edge(session: Session, src: tuple[str, str | int], relation: str, dst: tuple[str, str | int]) -> None:
    """Insert ``src --relation--> dst`` unless it exists."""
    values = dict(
        src_type=src[0], src_id=str(src[1]), dst_type=dst[0], dst_id=str(dst[1]),
        relation=relation, created_at=utcnow(),
    )
    conn = session.connection()
    conn.execute(_insert_edge(conn.dialect.name), values)


def _chunks(items: Sequence[Node], size: int) -> Iterable[Sequence[Node]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def walk(session: Session, start: Node, *, direction: str = "downstream", max_depth: int = 50) -> list[Edge]:
    """Every edge reachable from ``start`` following edges forward or backward.

    Breadth first, one query per level (not per node), so a wide graph costs
    ``max_depth`` round trips at most.
    """
    if direction not in ("upstream", "downstream"):
        raise ValidationError(
            f"direction {direction!r} is invalid: use 'upstream' or 'downstream'",
            field="direction", rule="choice",
        )
    down = direction == "downstream"
    key = tuple_(LineageEdge.src_type, LineageEdge.src_id) if down else tuple_(LineageEdge.dst_type, LineageEdge.dst_id)
    seen: set[Node] = {start}
    edges: list[Edge] = []
    frontier: list[Node] = [start]
    for _ in range(max_depth):
        if not frontier:
            break
        found: list[LineageEdge] = []
        for chunk in _chunks(frontier, _CHUNK):
            found.extend(session.execute(select(LineageEdge).where(key.in_(list(chunk)))).scalars())
        found.sort(key=lambda r: r.id)
        frontier = []
        for row in found:
            edge = Edge((row.src_type, row.src_id), row.relation, (row.dst_type, row.dst_id))
            edges.append(edge)
            nxt = edge.dst if down else edge.src
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return edges


# ---------------------------------------------------------------------------
# node types: how a user names a node, and how it is shown


#: Turns the id a user typed into the stored node (possibly of another type).
Resolver = Callable[[Session, str], Node]
#: Labels and attributes for stored ids of one type (ids missing from the result get defaults).
Describer = Callable[[Session, list[str]], dict[str, tuple[str, dict[str, Any]]]]


@dataclass
class _NodeType:
    resolve: Resolver | None = None
    describe: Describer | None = None


_NODE_TYPES: dict[str, _NodeType] = {}


def register_node_type(type_: str, *, resolve: Resolver | None = None, describe: Describer | None = None) -> None:
    """Teach lineage a node type owned by a later stage (``deployment``, ``alert`` ...)."""
    _NODE_TYPES[type_] = _NodeType(resolve=resolve, describe=describe)


def parse_node(session: Session, text: str) -> Node:
    """``TYPE:ID`` as a user writes it → the stored ``(type, id)``; unknown objects raise."""
    otype, sep, oid = text.partition(":")
    if not sep or not otype or not oid:
        raise ValidationError(
            f"lineage object {text!r} is invalid: use TYPE:ID, e.g. model:churn@champion, "
            "model_version:churn/3, dataset_version:weather@2, run:<id>",
            field="object", rule="format",
        )
    spec = _NODE_TYPES.get(otype)
    if spec is None or spec.resolve is None:
        return (otype, oid)
    return spec.resolve(session, oid)


def _dataset_version_row(session: Session, oid: str) -> tuple[str, DatasetVersion]:
    """``NAME@V``, ``NAME`` (latest) or a row id → (dataset name, row)."""
    if oid.isdigit():
        row = session.get(DatasetVersion, int(oid))
        if row is None:
            raise NotFoundError(f"dataset version id {oid} not found")
        ds = session.get(Dataset, row.dataset_id)
        assert ds is not None
        return ds.name, row
    name, sep, version = oid.partition("@")
    ds = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
    if ds is None:
        known = session.execute(select(Dataset.name).order_by(Dataset.name).limit(20)).scalars().all()
        raise NotFoundError(f"dataset {name!r} not found; datasets: {', '.join(known) or '(none)'}")
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
    if sep and version != "latest":
        if not version.isdigit():
            raise ValidationError(
                f"dataset version {oid!r} is invalid: use NAME@VERSION with a number",
                field="object", rule="format",
            )
        stmt = stmt.where(DatasetVersion.version == int(version))
    row = session.execute(stmt.order_by(DatasetVersion.version.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        versions = session.execute(
            select(DatasetVersion.version).where(DatasetVersion.dataset_id == ds.id).order_by(DatasetVersion.version)
        ).scalars().all()
        raise NotFoundError(
            f"dataset {name!r} has no version {version}; versions: {', '.join(map(str, versions)) or '(none)'}"
        )
    return ds.name, row


def dataset_version_node(session: Session, ref: str | int) -> Node:
    """The node of a dataset version given as ``NAME@V``, ``NAME`` or its row id."""
    name, row = _dataset_version_row(session, str(ref))
    return ("dataset_version", f"{name}@{row.version}")


def _describe_dataset_versions(session: Session, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    wanted: dict[tuple[str, int], str] = {}
    for oid in ids:
        name, _, version = oid.partition("@")
        if version.isdigit():
            wanted[(name, int(version))] = oid
    if not wanted:
        return {}
    rows = session.execute(
        select(DatasetVersion, Dataset.name).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(tuple_(Dataset.name, DatasetVersion.version).in_(list(wanted)))
    ).all()
    out = {}
    for dv, name in rows:
        attrs = {"dataset": name, "version": dv.version, "n_rows": dv.n_rows, "digest": dv.digest}
        out[wanted[(name, dv.version)]] = (f"{name}@{dv.version}", attrs)
    return out


def _model_version_row(session: Session, ref: ModelRef) -> tuple[str, ModelVersion]:
    model = session.execute(select(RegisteredModel).where(RegisteredModel.name == ref.name)).scalar_one_or_none()
    if model is None:
        known = session.execute(select(RegisteredModel.name).order_by(RegisteredModel.name).limit(20)).scalars().all()
        raise NotFoundError(f"model {ref.name!r} not found; models: {', '.join(known) or '(none)'}")
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ref.alias is not None and ref.alias != "latest":
        vid = session.execute(
            select(ModelAlias.version_id).where(ModelAlias.model_id == model.id, ModelAlias.alias == ref.alias)
        ).scalar_one_or_none()
        if vid is None:
            aliases = session.execute(
                select(ModelAlias.alias).where(ModelAlias.model_id == model.id).order_by(ModelAlias.alias)
            ).scalars().all()
            raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}; aliases: {', '.join(aliases) or '(none)'}")
        stmt = stmt.where(ModelVersion.id == vid)
    elif ref.version is not None:
        stmt = stmt.where(ModelVersion.version == ref.version)
    row = session.execute(stmt.order_by(ModelVersion.version.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        versions = session.execute(
            select(ModelVersion.version).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
        ).scalars().all()
        if ref.version is None:
            raise NotFoundError(f"model {ref.name!r} has no versions yet")
        raise NotFoundError(
            f"model {ref.name!r} has no version {ref.version}; versions: {', '.join(map(str, versions))}"
        )
    return model.name, row


def _resolve_model_version(session: Session, oid: str) -> Node:
    if oid.isdigit():
        row = session.get(ModelVersion, int(oid))
        if row is None:
            raise NotFoundError(f"model version id {oid} not found")
        model = session.get(RegisteredModel, row.model_id)
        assert model is not None
        return ("model_version", f"{model.name}/{row.version}")
    name, row = _model_version_row(session, ModelRef.parse(oid))
    return ("model_version", f"{name}/{row.version}")


def _describe_model_versions(session: Session, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    wanted: dict[tuple[str, int], str] = {}
    for oid in ids:
        name, _, version = oid.partition("/")
        if version.isdigit():
            wanted[(name, int(version))] = oid
    if not wanted:
        return {}
    rows = session.execute(
        select(ModelVersion, RegisteredModel.name).join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(tuple_(RegisteredModel.name, ModelVersion.version).in_(list(wanted)))
    ).all()
    keys = [mv.id for mv, _ in rows]
    aliases: dict[int, list[str]] = {}
    for vid, alias in session.execute(
        select(ModelAlias.version_id, ModelAlias.alias).where(ModelAlias.version_id.in_(keys)).order_by(ModelAlias.alias)
    ):
        aliases.setdefault(vid, []).append(alias)
    out = {}
    for mv, name in rows:
        tags = aliases.get(mv.id, [])
        label = f"{name}/{mv.version}" + (f" ({', '.join(tags)})" if tags else "")
        attrs = {"model": name, "version": mv.version, "aliases": tags, "gates_passed": mv.gates_passed}
        out[wanted[(name, mv.version)]] = (label, attrs)
    return out


def _resolve_run(session: Session, oid: str) -> Node:
    if session.get(Run, oid) is None:
        raise NotFoundError(f"run {oid!r} not found")
    return ("run", oid)


def _describe_runs(session: Session, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    rows = session.execute(select(Run).where(Run.id.in_(ids))).scalars()
    return {r.id: (f"{r.name} [{r.status}]", {"name": r.name, "kind": r.kind, "status": r.status}) for r in rows}


register_node_type("dataset_version", resolve=dataset_version_node, describe=_describe_dataset_versions)
register_node_type("model_version", resolve=_resolve_model_version, describe=_describe_model_versions)
register_node_type("model", resolve=lambda s, oid: _resolve_model_version(s, oid))
#: ``dataset:weather@2`` is what users type, as ``model:`` is for model versions.
register_node_type("dataset", resolve=dataset_version_node)
register_node_type("run", resolve=_resolve_run, describe=_describe_runs)


# ---------------------------------------------------------------------------
# the graph


@dataclass(frozen=True)
class LineageNode:
    type: str
    id: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.type}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "id": self.id, "label": self.label, "attrs": self.attrs}


@dataclass(frozen=True)
class LineageGraph:
    """The nodes and edges reachable from ``root`` in ``direction``."""

    root: LineageNode
    direction: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[Edge, ...]

    def node(self, key: str) -> LineageNode:
        for n in self.nodes:
            if n.key == key:
                return n
        raise NotFoundError(f"node {key!r} is not in this lineage graph")

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root.key,
            "direction": self.direction,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_dot(self) -> str:
        """Graphviz DOT (``dot -Tsvg``)."""

        def q(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
        for n in self.nodes:
            extra = ", style=bold" if n.key == self.root.key else ""
            lines.append(f"  {q(n.key)} [label={q(n.type + chr(10) + n.label)}{extra}];")
        for e in self.edges:
            lines.append(f"  {q(':'.join(e.src))} -> {q(':'.join(e.dst))} [label={q(e.relation)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart`` (renders in GitHub and most Markdown viewers)."""

        def q(text: str) -> str:
            return '"' + text.replace('"', "#quot;") + '"'

        ids = {n.key: f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for n in self.nodes:
            lines.append(f"  {ids[n.key]}[{q(n.type + ': ' + n.label)}]")
        for e in self.edges:
            rel = e.relation.replace("|", "/")
            lines.append(f"  {ids[':'.join(e.src)]} -->|{rel}| {ids[':'.join(e.dst)]}")
        if self.nodes:
            lines.append(f"  style {ids[self.root.key]} stroke-width:3px")
        return "\n".join(lines) + "\n"


def _describe(session: Session, nodes: Iterable[Node]) -> dict[Node, LineageNode]:
    by_type: dict[str, list[str]] = {}
    for otype, oid in nodes:
        by_type.setdefault(otype, []).append(oid)
    out: dict[Node, LineageNode] = {}
    for otype, ids in by_type.items():
        spec = _NODE_TYPES.get(otype)
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        if spec is not None and spec.describe is not None:
            for i in range(0, len(ids), _CHUNK):
                found.update(spec.describe(session, ids[i : i + _CHUNK]))
        for oid in ids:
            label, attrs = found.get(oid, (oid, {}))
            out[(otype, oid)] = LineageNode(otype, oid, label, attrs)
    return out


def _has_edges(session: Session, node: Node) -> bool:
    src = select(LineageEdge.id).where(LineageEdge.src_type == node[0], LineageEdge.src_id == node[1]).limit(1)
    dst = select(LineageEdge.id).where(LineageEdge.dst_type == node[0], LineageEdge.dst_id == node[1]).limit(1)
    return session.execute(src).first() is not None or session.execute(dst).first() is not None


def _edge_types(session: Session) -> set[str]:
    found = set(session.execute(select(LineageEdge.src_type).distinct()).scalars())
    return found | set(session.execute(select(LineageEdge.dst_type).distinct()).scalars())


def lineage(ws: HasStore, obj: str | Node, *, direction: str = "both", max_depth: int = 50) -> LineageGraph:
    """The lineage graph around ``obj``: where it came from, where it went, or both.

    ``obj`` is ``TYPE:ID`` as a user writes it (``model:churn@champion``,
    ``model_version:churn/3``, ``dataset_version:weather@2``, ``run:<id>``)
    or a stored ``(type, id)`` pair.
    """
    if direction not in DIRECTIONS:
        raise ValidationError(
            f"direction {direction!r} is invalid: use one of {', '.join(DIRECTIONS)}",
            field="direction", rule="choice",
        )
    with ws.store.read() as session:
        start = parse_node(session, obj) if isinstance(obj, str) else (obj[0], str(obj[1]))
        edges: list[Edge] = []
        for d in ("upstream", "downstream") if direction == "both" else (direction,):
            edges.extend(walk(session, start, direction=d, max_depth=max_depth))
        if not edges and isinstance(obj, str) and start[0] not in _NODE_TYPES and not _has_edges(session, start):
            # No resolver vouches for this object and no edge names it: a typo, not an empty graph.
            types = sorted({*_NODE_TYPES, *_edge_types(session)})
            raise NotFoundError(
                f"lineage object {obj!r}: nothing is recorded for a {start[0]!r} node with id {start[1]!r}; "
                f"node types: {', '.join(types)}"
            )
        order: dict[Node, None] = {start: None}
        for e in edges:
            order.setdefault(e.src)
            order.setdefault(e.dst)
        described = _describe(session, order)
    unique_edges = tuple(dict.fromkeys(edges))
    return LineageGraph(
        root=described[start],
        direction=direction,
        nodes=tuple(described[n] for n in order),
        edges=unique_edges,
    )

