"""Session-level queries the registry's services share: find, lock, build records.

Every function takes an open session and returns rows or records; the
services own the transactions. Not-found errors list what exists, so the
user sees the right name in the message.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, check_name, utcnow
from loopml.metadata._orm import LineageEdge, ModelAlias, ModelVersion, RegisteredModel
from loopml.metadata.store import dialect_insert
from loopml.register._records import ModelVersionRecord, RegisteredModelRecord

__all__ = [
    "check_alias",
    "ensure_model",
    "find_model",
    "find_version",
    "find_version_by_name",
    "lock_model",
    "lock_or_create_model",
    "model_record",
    "parse_ref",
    "version_record",
    "version_records",
]

#: Aliases a user cannot set: ``NAME@latest`` always means the newest version.
RESERVED_ALIASES = frozenset({"latest"})
_MAX_LIST = 20


def parse_ref(ref: str | ModelRef) -> ModelRef:
    if isinstance(ref, ModelRef):
        return ref
    if not isinstance(ref, str):
        raise ValidationError(
            f"model reference must be a string like 'churn@champion' or 'churn/3', got {type(ref).__name__}",
            field="model_ref", rule="type",
        )
    return ModelRef.parse(ref)


def check_alias(alias: str) -> str:
    """Aliases follow the name rule, are at most 64 characters, and are not numbers."""
    check_name(alias, "alias")
    if len(alias) > 64:
        raise ValidationError(f"alias {alias!r} is too long: at most 64 characters", field="alias", rule="max_length")
    if alias.isdigit():
        raise ValidationError(
            f"alias {alias!r} is invalid: an alias cannot be a number (NAME/{alias} already means version {alias})",
            field="alias", rule="not_number",
        )
    if alias in RESERVED_ALIASES:
        raise ValidationError(
            f"alias {alias!r} is reserved: NAME@{alias} always means the newest version",
            field="alias", rule="reserved",
        )
    return alias


# Hot-path statements are built once with bound parameters: SQLAlchemy then reuses
# their cache key and compiled form instead of rebuilding both on every call.
_FIND_MODEL = select(RegisteredModel).where(RegisteredModel.name == bindparam("name"))
_LOCK_MODEL = (
    _FIND_MODEL.with_for_update()
    # A copy loaded earlier in this session would hide a newer last_version.
    .execution_options(populate_existing=True)
)
_ALIAS_TARGET = select(ModelAlias.version_id).where(
    ModelAlias.model_id == bindparam("model_id"), ModelAlias.alias == bindparam("alias")
)
_VERSION_ALIASES = (
    select(ModelAlias.version_id, ModelAlias.alias)
    .where(ModelAlias.version_id.in_(bindparam("ids", expanding=True)))
    .order_by(ModelAlias.alias)
)
_VERSION_DATASETS = select(LineageEdge.src_id, LineageEdge.dst_id).where(
    LineageEdge.src_type == "dataset_version",
    LineageEdge.dst_type == "model_version",
    LineageEdge.dst_id.in_(bindparam("nodes", expanding=True)),
)


@functools.cache
def _version_stmt(by: str, lock: bool) -> Any:
    """``SELECT`` one version of model ``:model_id`` by row ``id``, ``number`` or the ``latest``."""
    stmt = select(ModelVersion).where(ModelVersion.model_id == bindparam("model_id"))
    if by == "id":
        stmt = stmt.where(ModelVersion.id == bindparam("key"))
    elif by == "number":
        stmt = stmt.where(ModelVersion.version == bindparam("key"))
    stmt = stmt.order_by(ModelVersion.version.desc()).limit(1)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return stmt


@functools.cache
def _version_by_name_stmt(by: str) -> Any:
    """``SELECT`` one version of the model named ``:name`` by ``alias``, ``number`` or the ``latest``."""
    stmt = (
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.name == bindparam("name"))
    )
    if by == "alias":
        stmt = stmt.join(
            ModelAlias, (ModelAlias.version_id == ModelVersion.id) & (ModelAlias.model_id == RegisteredModel.id)
        ).where(ModelAlias.alias == bindparam("key"))
    elif by == "number":
        stmt = stmt.where(ModelVersion.version == bindparam("key"))
    return stmt.order_by(ModelVersion.version.desc()).limit(1)


def find_model(session: Session, name: str) -> RegisteredModel:
    model = session.execute(_FIND_MODEL, {"name": name}).scalar_one_or_none()
    if model is None:
        known = session.execute(select(RegisteredModel.name).order_by(RegisteredModel.name).limit(_MAX_LIST)).scalars().all()
        raise NotFoundError(f"model {name!r} not found; models: {', '.join(known) or '(none registered)'}")
    return model


def lock_model(session: Session, name: str) -> RegisteredModel:
    """The model row, locked until the transaction ends (``FOR UPDATE``; SQLite's
    ``BEGIN IMMEDIATE`` already holds the database write lock)."""
    model = session.execute(_LOCK_MODEL, {"name": name}).scalar_one_or_none()
    if model is None:
        find_model(session, name)  # raises with the list of models
    assert model is not None
    return model


def lock_or_create_model(session: Session, name: str, actor: str) -> tuple[RegisteredModel, bool]:
    """The model row, locked (:func:`lock_model`), created first if it does not exist; and whether it was.

    One ``SELECT ... FOR UPDATE`` when the model exists (every registration but the first).
    """
    model = session.execute(_LOCK_MODEL, {"name": name}).scalar_one_or_none()
    if model is not None:
        return model, False
    created = ensure_model(session, name, actor)
    return lock_model(session, name), created


def ensure_model(session: Session, name: str, actor: str) -> bool:
    """Create the model row unless it exists; True if this call created it.

    ``ON CONFLICT DO NOTHING``: a second first-time registration in another
    process waits for the first and then finds its row instead of failing.
    """
    insert = dialect_insert(session.get_bind().dialect.name)
    # RETURNING, not rowcount: an ORM-enabled insert reports rowcount -1 on PostgreSQL.
    created = session.execute(
        insert(RegisteredModel)
        .values(name=name, project="default", last_version=0, created_at=utcnow(), created_by=actor)
        .on_conflict_do_nothing()
        .returning(RegisteredModel.id)
    ).scalar_one_or_none()
    return created is not None


def find_version(session: Session, model: RegisteredModel, ref: ModelRef, *, lock: bool = False) -> ModelVersion:
    """The version ``ref`` names (alias, number, or the newest)."""
    params: dict[str, Any] = {"model_id": model.id}
    by = "latest"
    if ref.alias is not None and ref.alias not in RESERVED_ALIASES:
        version_id = session.execute(_ALIAS_TARGET, {"model_id": model.id, "alias": ref.alias}).scalar_one_or_none()
        if version_id is None:
            aliases = session.execute(
                select(ModelAlias.alias).where(ModelAlias.model_id == model.id).order_by(ModelAlias.alias)
            ).scalars().all()
            raise NotFoundError(
                f"model {model.name!r} has no alias {ref.alias!r}; aliases: {', '.join(aliases) or '(none)'}"
            )
        by, params["key"] = "id", version_id
    elif ref.version is not None:
        by, params["key"] = "number", ref.version
    row = session.execute(_version_stmt(by, lock), params).scalar_one_or_none()
    if row is None:
        versions = session.execute(
            select(ModelVersion.version).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
        ).scalars().all()
        if not versions:
            raise NotFoundError(f"model {model.name!r} has no versions yet")
        shown = ", ".join(map(str, versions[-_MAX_LIST:]))
        raise NotFoundError(f"model {model.name!r} has no version {ref.version}; versions: {shown}")
    return row


def find_version_by_name(session: Session, ref: ModelRef) -> ModelVersion:
    """:func:`find_version` by model name, in one query on the hot path (``load_model``).

    A miss falls back to :func:`find_model` + :func:`find_version`, which raise
    the not-found error that lists what exists.
    """
    params: dict[str, Any] = {"name": ref.name}
    by = "latest"
    if ref.alias is not None and ref.alias not in RESERVED_ALIASES:
        by, params["key"] = "alias", ref.alias
    elif ref.version is not None:
        by, params["key"] = "number", ref.version
    row = session.execute(_version_by_name_stmt(by), params).scalar_one_or_none()
    if row is None:
        row = find_version(session, find_model(session, ref.name), ref)
    return row


def version_records(session: Session, name: str, rows: Sequence[ModelVersion]) -> list[ModelVersionRecord]:
    """Records for versions of one model, with aliases and datasets in two queries."""
    ids = [r.id for r in rows]
    aliases: dict[int, list[str]] = {}
    datasets: dict[str, list[str]] = {}
    if ids:
        for vid, alias in session.execute(_VERSION_ALIASES, {"ids": ids}):
            aliases.setdefault(vid, []).append(alias)
        for src_id, dst_id in session.execute(_VERSION_DATASETS, {"nodes": [f"{name}/{r.version}" for r in rows]}):
            datasets.setdefault(dst_id, []).append(src_id)
    return [
        version_record(r, name, aliases.get(r.id, ()), datasets.get(f"{name}/{r.version}", ())) for r in rows
    ]


def version_record(r: ModelVersion, name: str, aliases: Iterable[str], datasets: Iterable[str]) -> ModelVersionRecord:
    """The record of row ``r`` whose aliases and dataset versions the caller already knows."""
    return ModelVersionRecord(
        id=r.id, model_id=r.model_id, name=name, version=r.version,
        artifact_digest=r.artifact_digest, flavor=r.flavor, task=r.task, signature=r.signature,
        profile=r.profile, evaluation=r.evaluation, gate_report=r.gate_report,
        gates_passed=r.gates_passed, run_id=r.run_id, git_commit=r.git_commit,
        git_dirty=r.git_dirty, tags=dict(r.tags or {}), description=r.description,
        created_at=r.created_at, created_by=r.created_by,
        aliases=tuple(sorted(aliases)), dataset_versions=tuple(sorted(datasets)),
    )


def model_records(session: Session, models: Iterable[RegisteredModel]) -> list[RegisteredModelRecord]:
    models = list(models)
    ids = [m.id for m in models]
    stats: dict[int, tuple[int | None, int]] = {}
    aliases: dict[int, dict[str, int]] = {}
    if ids:
        for mid, latest, count in session.execute(
            select(ModelVersion.model_id, func.max(ModelVersion.version), func.count())
            .where(ModelVersion.model_id.in_(ids)).group_by(ModelVersion.model_id)
        ):
            stats[mid] = (latest, count)
        for mid, alias, version in session.execute(
            select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.model_id.in_(ids)).order_by(ModelAlias.alias)
        ):
            aliases.setdefault(mid, {})[alias] = version
    return [
        RegisteredModelRecord(
            id=m.id, name=m.name, project=m.project, description=m.description,
            latest_version=stats.get(m.id, (None, 0))[0], n_versions=stats.get(m.id, (None, 0))[1],
            aliases=aliases.get(m.id, {}), created_at=m.created_at, created_by=m.created_by,
        )
        for m in models
    ]


def model_record(session: Session, model: RegisteredModel) -> RegisteredModelRecord:
    return model_records(session, [model])[0]
