"""Plain records returned by the ingest services (never ORM rows), and dataset references."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import check_name

__all__ = ["DatasetRecord", "DatasetVersionRecord", "parse_ref"]

_VERSION_RE = re.compile(r"^[1-9][0-9]*$")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (latest) | ``NAME@latest`` | ``NAME@3`` -> (name, version or None)."""
    if not isinstance(ref, str):
        raise ValidationError(f"dataset reference must be a string, got {type(ref).__name__}", field="ref", rule="type")
    name, sep, version = ref.strip().partition("@")
    check_name(name, "dataset")
    if not sep or version == "latest":
        return name, None
    if not _VERSION_RE.match(version):
        raise ValidationError(
            f"dataset reference {ref!r}: the version must be a positive integer or 'latest' (NAME@3)",
            field="ref",
            rule="format",
        )
    return name, int(version)


@dataclass(frozen=True)
class DatasetVersionRecord:
    """One immutable dataset version: where its Parquet lives and what it looks like."""

    name: str
    version: int
    digest: str
    artifact_digest: str
    n_rows: int
    n_columns: int
    schema: list[dict[str, Any]]
    profile: dict[str, Any] = field(repr=False)
    source: dict[str, Any]
    created_at: datetime
    created_by: str
    #: False when ``ingest`` found the same content already stored (nothing written).
    new: bool = True

    @property
    def ref(self) -> str:
        """``NAME@VERSION``: the reference the CLI and other stages use."""
        return f"{self.name}@{self.version}"

    @property
    def lineage_node(self) -> tuple[str, str]:
        """This version's node in the lineage graph: ``("dataset_version", "NAME@VERSION")``."""
        return ("dataset_version", self.ref)

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema]

    def to_dict(self, *, profile: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data["ref"] = self.ref
        data["created_at"] = self.created_at.isoformat()
        if not profile:
            data.pop("profile")
        return data


@dataclass(frozen=True)
class DatasetRecord:
    """A named dataset: its versions' count, the latest, and whether it has a contract."""

    name: str
    description: str | None
    project: str
    n_versions: int
    latest_version: int | None
    has_contract: bool
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data
