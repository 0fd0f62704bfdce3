"""The lineage graph: add edges, walk upstream or downstream."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from loopml.kernel.types import utcnow
from loopml.metadata._orm import LineageEdge

__all__ = ["Edge", "Node", "add_edge", "walk"]

Node = tuple[str, str]


@dataclass(frozen=True)
class Edge:
    src: Node
    relation: str
    dst: Node


def add_edge(session: Session, src: tuple[str, str | int], relation: str, dst: tuple[str, str | int]) -> None:
    """Insert ``src --relation--> dst`` unless it exists."""
    values = dict(
        src_type=src[0], src_id=str(src[1]), dst_type=dst[0], dst_id=str(dst[1]),
        relation=relation, created_at=utcnow(),
    )
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(LineageEdge).values(**values).on_conflict_do_nothing()
    session.execute(stmt)


def walk(session: Session, start: Node, *, direction: str = "downstream", max_depth: int = 50) -> list[Edge]:
    """Every edge reachable from ``start`` following edges forward or backward (BFS)."""
    if direction not in ("upstream", "downstream"):
        raise ValueError("direction must be 'upstream' or 'downstream'")
    seen: set[Node] = {start}
    edges: list[Edge] = []
    queue: deque[tuple[Node, int]] = deque([(start, 0)])
    while queue:
        (otype, oid), depth = queue.popleft()
        if depth >= max_depth:
            continue
        if direction == "downstream":
            cond = and_(LineageEdge.src_type == otype, LineageEdge.src_id == oid)
        else:
            cond = and_(LineageEdge.dst_type == otype, LineageEdge.dst_id == oid)
        for row in session.execute(select(LineageEdge).where(cond).order_by(LineageEdge.id)).scalars():
            edge = Edge((row.src_type, row.src_id), row.relation, (row.dst_type, row.dst_id))
            edges.append(edge)
            nxt = edge.dst if direction == "downstream" else edge.src
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, depth + 1))
    return edges
