"""One lineage graph: typed edges between any two objects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loopml.metadata._orm.base import Base, UTCDateTime


class LineageEdge(Base):
    """``src`` --relation--> ``dst``; e.g. dataset_version:3 --used_by--> run:ab12."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("src_type", "src_id", "dst_type", "dst_id", "relation"),
        Index("ix_lineage_edges_dst", "dst_type", "dst_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    src_type: Mapped[str] = mapped_column(String(64))
    src_id: Mapped[str] = mapped_column(String(256))
    dst_type: Mapped[str] = mapped_column(String(64))
    dst_id: Mapped[str] = mapped_column(String(256))
    relation: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
