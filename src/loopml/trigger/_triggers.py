"""Triggers: what starts a continuous-training run, and why.

Four kinds (the seeds' list): ``schedule`` (cron), ``new_data`` (a new dataset
version, optionally only above N new rows or when its distribution moved),
``alert`` (an open incident; at most one retraining per incident) and
``manual`` (a person). Firing writes a *run request* row with the context
(which alert, which features drifted, which data version); the scheduler's
runner executes it. A trigger never imports the runner: the request is the edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from loopml.kernel.cron import Cron
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import check_name, utcnow
from loopml.metadata._orm import RunRequest, Trigger
from loopml.workspace import Workspace

__all__ = [
    "TRIGGER_KINDS",
    "RunRequestRecord",
    "TriggerRecord",
    "add_trigger",
    "fire_trigger",
    "get_trigger",
    "list_run_requests",
    "list_triggers",
    "remove_trigger",
    "set_trigger_enabled",
]

TRIGGER_KINDS = ("schedule", "new_data", "alert", "manual")
_CONFIG_KEYS = {
    "schedule": {"cron"},
    "new_data": {"dataset", "min_new_rows", "on_drift", "drift_share"},
    "alert": {"endpoint", "rules", "min_severity", "debounce_s"},
    "manual": set(),
}


@dataclass(frozen=True)
class TriggerRecord:
    id: int
    name: str
    kind: str
    config: dict[str, Any]
    recipe_path: str | None
    enabled: bool
    next_due_at: datetime | None
    last_fired_at: datetime | None
    state: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRequestRecord:
    id: int
    trigger_id: int | None
    status: str
    context: dict[str, Any]
    run_id: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    #: What the run produced (``RecipeResult.to_dict()``), once it succeeded.
    result: dict[str, Any] | None = None
    #: The run's step events so far: ``{"events": [[step, status, seconds], ...]}``.
    progress: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trigger_record(row: Trigger) -> TriggerRecord:
    return TriggerRecord(row.id, row.name, row.kind, row.config or {}, row.recipe_path, row.enabled,
                         row.next_due_at, row.last_fired_at, row.state or {})


def request_record(row: RunRequest) -> RunRequestRecord:
    return RunRequestRecord(row.id, row.trigger_id, row.status, row.context or {}, row.run_id, row.error,
                            row.created_at, row.started_at, row.ended_at, row.result, row.progress)


def _check_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    if kind not in TRIGGER_KINDS:
        raise ValidationError(f"trigger kind {kind!r} is unknown; allowed: {', '.join(TRIGGER_KINDS)}", field="kind", rule="enum")
    unknown = set(config) - _CONFIG_KEYS[kind]
    if unknown:
        allowed = ", ".join(sorted(_CONFIG_KEYS[kind])) or "(none)"
        raise ValidationError(f"{kind} trigger: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}",
                              field="config", rule="keys")
    if kind == "schedule":
        if "cron" not in config:
            raise ValidationError("schedule trigger needs 'cron' (e.g. '0 3 * * *')", field="cron", rule="required")
        Cron.parse(config["cron"])
    if kind == "new_data":
        if "dataset" not in config:
            raise ValidationError("new_data trigger needs 'dataset' (the dataset name to watch)", field="dataset", rule="required")
        if int(config.get("min_new_rows", 0)) < 0:
            raise ValidationError("min_new_rows must be >= 0", field="min_new_rows", rule="range")
    if kind == "alert" and float(config.get("debounce_s", 0)) < 0:
        raise ValidationError("debounce_s must be >= 0", field="debounce_s", rule="range")
    return dict(config)


def add_trigger(
    ws: Workspace, name: str, kind: str, *, recipe: dict[str, Any], recipe_path: str | None = None,
    config: dict[str, Any] | None = None, now: datetime | None = None,
) -> TriggerRecord:
    """Create a trigger that runs ``recipe`` (a recipe spec dict) when it fires."""
    check_name(name, "trigger")
    cfg = _check_config(kind, config or {})
    now = now or utcnow()
    state: dict[str, Any] = {}
    with ws.store.write(ws.actor) as tx:
        if kind == "new_data":
            # The data present now is the baseline: only versions after it fire.
            from loopml.trigger._evaluate import latest_version

            latest = latest_version(tx.session, cfg["dataset"])
            state = {"last_version_id": latest.id if latest else None}
        row = Trigger(
            name=name, kind=kind, recipe=recipe, recipe_path=recipe_path, config=cfg, enabled=True,
            next_due_at=Cron.parse(cfg["cron"]).next_after(now) if kind == "schedule" else None,
            state=state, created_at=now, created_by=ws.actor,
        )
        tx.session.add(row)
        tx.session.flush()
        tx.audit("trigger.add", "trigger", row.id, after={"name": name, "kind": kind, "config": cfg, "recipe_path": recipe_path})
        return _trigger_record(row)


def _get(session: Any, name: str, *, lock: bool = False) -> Trigger:
    query = select(Trigger).where(Trigger.name == name)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        known = ", ".join(session.execute(select(Trigger.name).order_by(Trigger.name)).scalars()) or "(none)"
        raise NotFoundError(f"trigger {name!r} does not exist; triggers: {known}")
    return row


def get_trigger(ws: Workspace, name: str) -> TriggerRecord:
    with ws.store.read() as s:
        return _trigger_record(_get(s, name))


def list_triggers(ws: Workspace) -> list[TriggerRecord]:
    with ws.store.read() as s:
        return [_trigger_record(r) for r in s.execute(select(Trigger).order_by(Trigger.id)).scalars()]


def set_trigger_enabled(ws: Workspace, name: str, enabled: bool) -> TriggerRecord:
    with ws.store.write(ws.actor) as tx:
        row = _get(tx.session, name, lock=True)
        before = row.enabled
        row.enabled = enabled
        tx.audit("trigger.enable" if enabled else "trigger.disable", "trigger", row.id,
                 before={"enabled": before}, after={"enabled": enabled})
        return _trigger_record(row)


def remove_trigger(ws: Workspace, name: str) -> None:
    with ws.store.write(ws.actor) as tx:
        row = _get(tx.session, name, lock=True)
        tx.audit("trigger.remove", "trigger", row.id, before={"name": row.name, "kind": row.kind})
        tx.session.delete(row)


def enqueue(tx: Any, trigger: Trigger | None, context: dict[str, Any], now: datetime, *,
            recipe: dict[str, Any] | None = None) -> RunRequest:
    """Write a run request in the caller's transaction, audited and linked for lineage."""
    request = RunRequest(trigger_id=trigger.id if trigger else None, status="pending", context=context, created_at=now,
                         recipe=recipe)
    tx.session.add(request)
    tx.session.flush()
    if trigger is not None:
        trigger.last_fired_at = now
        tx.link(("trigger", trigger.id), "requested", ("run_request", request.id))
    if context.get("alert_id"):
        tx.link(("alert", context["alert_id"]), "caused", ("run_request", request.id))
    if context.get("dataset_version_id"):
        tx.link(("dataset_version", context["dataset_version_id"]), "caused", ("run_request", request.id))
    # A trigger's firing, or a person's submitted recipe (no trigger).
    tx.audit("trigger.fire" if trigger is not None else "run_request.submit", "run_request", request.id,
             after={"trigger": trigger.name if trigger else None, "context": context})
    return request


def fire_trigger(ws: Workspace, name: str, *, reason: str | None = None, context: dict[str, Any] | None = None) -> RunRequestRecord:
    """A person (or the API) fires a trigger now, whatever its kind."""
    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        row = _get(tx.session, name, lock=True)
        if not row.enabled:
            raise ValidationError(f"trigger {name!r} is disabled; enable it first", field="trigger", rule="enabled")
        ctx = {"type": "manual", "trigger": name, "by": ws.actor, "reason": reason, **(context or {})}
        return request_record(enqueue(tx, row, ctx, now))


def list_run_requests(ws: Workspace, *, status: str | None = None, limit: int = 100) -> list[RunRequestRecord]:
    query = select(RunRequest).order_by(RunRequest.id.desc()).limit(limit)
    if status:
        query = query.where(RunRequest.status == status)
    with ws.store.read() as s:
        return [request_record(r) for r in s.execute(query).scalars()]
