"""Which triggers are due now; each due trigger becomes exactly one run request.

Every decision is taken inside a write transaction that locks the trigger row
(``SELECT ... FOR UPDATE``; SQLite writers are serial), so two schedulers
never fire the same slot twice, and a slot that fell due while no scheduler
ran fires once on restart rather than being lost or repeated.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.kernel.cron import Cron
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Alert, Dataset, DatasetVersion, Trigger
from loopml.trigger._triggers import RunRequestRecord, enqueue, request_record
from loopml.workspace import Workspace

__all__ = ["check_triggers", "latest_version"]

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_HANDLED_KEEP = 1000


def latest_version(session: Session, dataset: str) -> DatasetVersion | None:
    return session.execute(
        select(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.name == dataset).order_by(DatasetVersion.version.desc()).limit(1)
    ).scalar_one_or_none()


def _schedule(tx: Any, row: Trigger, now: datetime) -> dict[str, Any] | None:
    if row.next_due_at is None or row.next_due_at > now:
        return None
    due = row.next_due_at
    row.next_due_at = Cron.parse(row.config["cron"]).next_after(now)
    return {"type": "schedule", "trigger": row.name, "cron": row.config["cron"], "due_at": due.isoformat()}


def _data_moved(ws: Workspace, dataset: str, before: int, after: int, drift_share: float) -> tuple[bool, list[str]]:
    """Did the distribution move between two versions? (the drift detector on both frames)"""
    from loopml.ingest import load_frame
    from loopml.monitor.drift import DriftDetector

    old = load_frame(ws, f"{dataset}@{before}")
    new = load_frame(ws, f"{dataset}@{after}")
    common = [c for c in old.columns if c in new.columns]
    report = DriftDetector(drift_share=drift_share).fit(old[common]).score(new[common])
    return bool(report.dataset_drift), list(report.drifted_columns)


def _new_data(ws: Workspace, tx: Any, row: Trigger, now: datetime) -> dict[str, Any] | None:
    cfg, state = row.config, dict(row.state or {})
    latest = latest_version(tx.session, cfg["dataset"])
    if latest is None or latest.id == state.get("last_version_id"):
        return None
    baseline = tx.session.get(DatasetVersion, state["last_version_id"]) if state.get("last_version_id") else None
    # Versions are usually snapshots: new rows = growth; a smaller snapshot counts whole.
    new_rows = latest.n_rows - baseline.n_rows if baseline and latest.n_rows >= baseline.n_rows else latest.n_rows
    if new_rows < int(cfg.get("min_new_rows", 0)):
        return None  # keep the baseline: rows accumulate until the threshold
    drifted: list[str] = []
    if cfg.get("on_drift") and baseline is not None:
        moved, drifted = _data_moved(ws, cfg["dataset"], baseline.version, latest.version,
                                      float(cfg.get("drift_share", 0.3)))
        if not moved:
            state["last_version_id"] = latest.id
            row.state = state
            return None
    state["last_version_id"] = latest.id
    row.state = state
    return {"type": "new_data", "trigger": row.name, "dataset_version": f"{cfg['dataset']}@{latest.version}",
            "dataset_version_id": latest.id, "new_rows": int(new_rows), "drifted_features": drifted}


def _alert(tx: Any, row: Trigger, now: datetime) -> dict[str, Any] | None:
    cfg, state = row.config, dict(row.state or {})
    if row.last_fired_at and float(cfg.get("debounce_s", 0)) and row.last_fired_at > now - timedelta(seconds=float(cfg["debounce_s"])):
        return None
    handled = set(state.get("handled_alerts", []))
    query = select(Alert).where(Alert.status.in_(("open", "acknowledged"))).order_by(Alert.id)
    if cfg.get("endpoint"):
        query = query.where(Alert.endpoint == cfg["endpoint"])
    if cfg.get("rules"):
        query = query.where(Alert.rule.in_(list(cfg["rules"])))
    min_rank = _SEVERITY_RANK.get(cfg.get("min_severity", "info"), 0)
    for alert in tx.session.execute(query).scalars():
        if alert.id in handled or _SEVERITY_RANK.get(alert.severity, 0) < min_rank:
            continue
        state["handled_alerts"] = [*sorted(handled), alert.id][-_HANDLED_KEEP:]
        row.state = state
        ctx = alert.context or {}
        return {"type": "alert", "trigger": row.name, "alert_id": alert.id, "rule": alert.rule,
                "endpoint": alert.endpoint, "severity": alert.severity, "message": alert.message,
                "drifted_features": ctx.get("drifted_features", []), "window": ctx.get("window")}
    return None


def check_triggers(ws: Workspace, *, now: datetime | None = None) -> list[RunRequestRecord]:
    """Fire every due trigger once; returns the run requests written."""
    now = now or utcnow()
    with ws.store.read() as s:
        ids = list(s.execute(select(Trigger.id).where(Trigger.enabled.is_(True), Trigger.kind != "manual")).scalars())
    fired: list[RunRequestRecord] = []
    for trigger_id in ids:
        with ws.store.write(ws.actor) as tx:
            row = tx.session.execute(select(Trigger).where(Trigger.id == trigger_id).with_for_update()).scalar_one_or_none()
            if row is None or not row.enabled:
                continue
            if row.kind == "schedule":
                context = _schedule(tx, row, now)
            elif row.kind == "new_data":
                context = _new_data(ws, tx, row, now)
            else:
                context = _alert(tx, row, now)
            if context is not None:
                fired.append(request_record(enqueue(tx, row, context, now)))
    return fired
