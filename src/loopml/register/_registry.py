"""Registering model versions, finding them by reference, and editing their metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, check_name, jsonable, utcnow
from loopml.metadata._orm import ModelVersion, RegisteredModel, Run
from loopml.metadata.lineage import dataset_version_node
from loopml.register._aliases import ModelHandle, Target, move_alias
from loopml.register._queries import (
    check_alias,
    ensure_model,
    find_model,
    find_version,
    find_version_by_name,
    lock_model,
    lock_or_create_model,
    model_record,
    model_records,
    parse_ref,
    version_records,
)
from loopml.register._records import LoadedModel, ModelVersionRecord, RegisteredModelRecord
from loopml.register._serialize import MEDIA_TYPE, dump_model, infer_task, model_meta
from loopml.workspace import Workspace

__all__ = [
    "get_model",
    "list_models",
    "list_versions",
    "register_model",
    "resolve",
    "update_version",
]

_RUN_GIT = select(Run.git_commit, Run.git_dirty).where(Run.id == bindparam("run_id"))
_MODELS = RegisteredModel.__table__
#: Lock the model row and hand out its next version number (``UPDATE ... RETURNING``).
_BUMP_VERSION = (
    update(_MODELS).where(_MODELS.c.name == bindparam("m_name"))
    .values(last_version=_MODELS.c.last_version + 1)
    .returning(_MODELS.c.id, _MODELS.c.last_version)
)
_INSERT_VERSION = insert(ModelVersion.__table__).returning(ModelVersion.__table__.c.id)

CONTRACT_TYPES = ("int", "float", "bool", "string", "category", "datetime")


def _check_signature(signature: Any) -> dict[str, Any] | None:
    """The signature is a data contract (CONTRIBUTING.md): check its shape once, here."""
    if signature is None:
        return None
    sig = jsonable(signature, "signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("columns"), dict) or not sig["columns"]:
        raise ValidationError(
            "signature must be a data contract with at least one column: "
            "{'version': 1, 'columns': {NAME: {'type': ...}}}",
            field="signature", rule="contract",
        )
    for col, spec in sig["columns"].items():
        ctype = spec.get("type") if isinstance(spec, dict) else None
        if ctype not in CONTRACT_TYPES:
            raise ValidationError(
                f"signature column {col!r} has type {ctype!r}; allowed: {', '.join(CONTRACT_TYPES)}",
                field=f"signature.columns.{col}.type", rule="choice",
            )
    return sig


def _check_optional_str(value: Any, field: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ValidationError(
            f"{field} must be a string of at most {max_len} characters, got {value!r:.80}",
            field=field, rule="max_length",
        )
    return value


def _check_dataset_refs(values: Sequence[int | str]) -> list[int | str]:
    if isinstance(values, (str, int)):
        values = [values]
    refs: list[int | str] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, int) and v < 1):
            raise ValidationError(
                f"dataset_versions must hold dataset version ids or NAME@VERSION references, got {v!r}",
                field="dataset_versions", rule="type",
            )
        refs.append(v)
    return list(dict.fromkeys(refs))


def register_model(
    ws: Workspace,
    name: str,
    model: Any,
    *,
    signature: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
    gate_report: dict[str, Any] | None = None,
    gates_passed: bool | None = None,
    run_id: str | None = None,
    dataset_versions: Sequence[int | str] = (),
    task: str | None = None,
    flavor: str = "sklearn",
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    aliases: Sequence[str] = (),
    git_commit: str | None = None,
    git_dirty: bool | None = None,
    reuse_identical: bool = False,
) -> ModelVersionRecord:
    """Store ``model`` as the next version of ``name`` and return its record.

    With ``reuse_identical``, a model whose bytes are already a version of
    ``name`` is not registered again: that version is returned (and the
    ``aliases`` are moved to it). A re-run of an unchanged pipeline then adds
    no version.

    The bytes go to the artifact store first (content-addressed, so a failed
    registration leaves at most an unreferenced blob). Then one transaction
    creates the model on first use, takes the next version number under the
    model row's lock, sets ``aliases``, links the version to its run and
    dataset versions (row ids or ``NAME@VERSION``), and appends the audit
    events. ``git_commit``/``git_dirty`` default to the run's.
    """
    check_name(name, "model")
    if isinstance(model, LoadedModel):
        model = model.estimator
    if isinstance(aliases, str):
        aliases = (aliases,)
    alias_list = list(dict.fromkeys(check_alias(a) for a in aliases))
    flavor = check_name(flavor, "flavor")
    sig = _check_signature(signature)
    profile_json = jsonable(profile, "profile")
    evaluation_json = jsonable(evaluation, "evaluation")
    gate_json = jsonable(gate_report, "gate_report")
    tags_json = jsonable(tags, "tags") or {}
    if not isinstance(tags_json, dict):
        raise ValidationError(f"tags must be a mapping, got {type(tags).__name__}", field="tags", rule="type")
    task = _check_optional_str(task, "task", 32) or infer_task(model)
    git_commit = _check_optional_str(git_commit, "git_commit", 40)
    description = _check_optional_str(description, "description", 100_000)
    run_id = _check_optional_str(run_id, "run_id", 32)
    ds_refs = _check_dataset_refs(dataset_versions)
    if gates_passed is not None and not isinstance(gates_passed, bool):
        raise ValidationError(f"gates_passed must be true, false or null, got {gates_passed!r}", field="gates_passed", rule="type")

    payload, serializer = dump_model(model, flavor)
    info = ws.artifacts.put_bytes(payload, media_type=MEDIA_TYPE, meta=model_meta(model, serializer, flavor))

    with ws.store.write(ws.actor) as tx:
        s = tx.session
        conn = s.connection()
        created = False
        if reuse_identical:
            reg, created = lock_or_create_model(s, name, ws.actor)
            same = s.execute(
                select(ModelVersion).where(ModelVersion.model_id == reg.id, ModelVersion.artifact_digest == info.digest)
                .order_by(ModelVersion.version.desc()).limit(1)
            ).scalar_one_or_none()
            if same is not None:
                for move in [move_alias(s, reg, a, same, actor=ws.actor, reason="re-registered, identical bytes")
                             for a in alias_list]:
                    if move is not None:
                        move.audit(tx)
                return version_records(s, name, [same])[0]
        # Lock the model row and take the next number in one statement; a concurrent
        # registration waits on the row lock (BEGIN IMMEDIATE on SQLite) and gets the next one.
        bumped = conn.execute(_BUMP_VERSION, {"m_name": name}).first()
        if bumped is None:
            created = ensure_model(s, name, ws.actor)
            bumped = conn.execute(_BUMP_VERSION, {"m_name": name}).one()
        model_id, version = int(bumped[0]), int(bumped[1])
        _forget_model(s, model_id)
        if run_id is not None:
            run = conn.execute(_RUN_GIT, {"run_id": run_id}).first()
            if run is None:
                raise NotFoundError(f"run {run_id!r} not found: a model version can only point at an existing run")
            if git_commit is None and git_dirty is None:
                git_commit, git_dirty = run.git_commit, run.git_dirty
        # Lineage names dataset versions NAME@VERSION (as ingest does); ids are translated.
        ds_nodes = list(dict.fromkeys(dataset_version_node(s, ref) for ref in ds_refs))
        values: dict[str, Any] = {
            "model_id": model_id, "version": version, "artifact_digest": info.digest, "flavor": flavor,
            "task": task, "signature": sig, "profile": profile_json, "evaluation": evaluation_json,
            "gate_report": gate_json, "gates_passed": gates_passed, "run_id": run_id, "git_commit": git_commit,
            "git_dirty": git_dirty, "tags": tags_json, "description": description,
            "created_at": utcnow(), "created_by": ws.actor,
        }
        version_id = int(conn.execute(_INSERT_VERSION, values).scalar_one())
        target = Target(version_id, version, ws.actor)
        model_key = ModelHandle(model_id, name)
        moves = [move_alias(s, model_key, alias, target, actor=ws.actor, reason=None) for alias in alias_list]
        ref = f"{name}/{version}"
        node = ("model_version", ref)
        for ds_node in ds_nodes:
            tx.link(ds_node, "used_by", node)
        if run_id is not None:
            tx.link(("run", run_id), "produced", node)
        # Audit last: the chain head is the hottest lock, held for the shortest time.
        if created:
            tx.audit("model.create", "model", name, after={"name": name})
        tx.audit(
            "model.register", "model_version", ref,
            after={
                "name": name, "version": version, "artifact_digest": info.digest,
                "serializer": serializer, "flavor": flavor, "task": task, "run_id": run_id,
                "dataset_versions": [n[1] for n in ds_nodes], "gates_passed": gates_passed, "aliases": alias_list,
            },
        )
        for move in moves:
            if move is not None:
                move.audit(tx)
        # The record is built from what was written: a new version's aliases and dataset edges are
        # the ones just written (versions are never deleted, so no older edge names NAME/VERSION).
        return ModelVersionRecord(
            id=version_id, name=name, **values, aliases=tuple(sorted(alias_list)),
            dataset_versions=tuple(sorted(n[1] for n in ds_nodes)),
        )


def _forget_model(session: Session, model_id: int) -> None:
    """Expire an ORM copy of the model row this session holds: the Core bump bypassed it."""
    obj = session.identity_map.get(identity_key(RegisteredModel, model_id))
    if obj is not None:
        session.expire(obj)


def resolve(ws: Workspace, ref: str | ModelRef) -> ModelVersionRecord:
    """The version ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (the newest) names."""
    parsed = parse_ref(ref)
    with ws.store.read() as s:
        row = find_version_by_name(s, parsed)
        return version_records(s, parsed.name, [row])[0]


def get_model(ws: Workspace, name: str) -> RegisteredModelRecord:
    """One registered model: latest version, version count, aliases."""
    with ws.store.read() as s:
        return model_record(s, find_model(s, name))


def list_models(ws: Workspace) -> list[RegisteredModelRecord]:
    """Every registered model, by name."""
    with ws.store.read() as s:
        return model_records(s, s.execute(select(RegisteredModel).order_by(RegisteredModel.name)).scalars())


def list_versions(ws: Workspace, name: str) -> list[ModelVersionRecord]:
    """Every version of ``name``, oldest first."""
    with ws.store.read() as s:
        model = find_model(s, name)
        rows = s.execute(
            select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
        ).scalars().all()
        return version_records(s, model.name, rows)


def update_version(
    ws: Workspace,
    name: str,
    version: int,
    *,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    gate_report: dict[str, Any] | None = None,
    gates_passed: bool | None = None,
    reason: str | None = None,
) -> ModelVersionRecord:
    """Edit a version's metadata (the model bytes never change); audited as ``model.update``.

    ``None`` leaves a field as it is. ``tags`` merge into the existing tags; a
    tag set to ``None`` is removed.
    """
    check_name(name, "model")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"version must be a positive integer, got {version!r}", field="version", rule="type")
    tags_json = jsonable(tags, "tags")
    if tags_json is not None and not isinstance(tags_json, dict):
        raise ValidationError(f"tags must be a mapping, got {type(tags).__name__}", field="tags", rule="type")
    description = _check_optional_str(description, "description", 100_000)
    gate_json = jsonable(gate_report, "gate_report")
    if gates_passed is not None and not isinstance(gates_passed, bool):
        raise ValidationError(f"gates_passed must be true, false or null, got {gates_passed!r}", field="gates_passed", rule="type")

    with ws.store.write(ws.actor) as tx:
        s = tx.session
        model = lock_model(s, name)
        row = find_version(s, model, ModelRef(name=name, version=version), lock=True)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}

        def change(field: str, new: Any) -> None:
            old = getattr(row, field)
            if new != old:
                before[field], after[field] = old, new
                setattr(row, field, new)

        if tags_json is not None:
            merged = dict(row.tags or {})
            for k, v in tags_json.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            change("tags", merged)
        if description is not None:
            change("description", description)
        if gate_json is not None:
            change("gate_report", gate_json)
        if gates_passed is not None:
            change("gates_passed", gates_passed)
        if after:
            s.flush()
            tx.audit("model.update", "model_version", f"{name}/{version}", before=before, after=after, reason=reason)
        return version_records(s, name, [row])[0]
