"""Defining monitors and running them: window -> reference -> checks -> report -> alerts.

A run reads only the columns its checks need from the prediction log through
DuckDB (one aggregate for the served model, one projection for the window),
compares them with the reference profile stored on the model version (never
recomputed; a pinned-window reference is profiled once and kept in the
artifact store), stores the report row and its HTML, then applies the alert
rules: a failing check raises or folds an incident, a passing one resolves it.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select

from loopml.kernel.cron import Cron
from loopml.kernel.exceptions import LoopmlError, MonitorError, NotFoundError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Monitor, MonitorReport
from loopml.monitor._checks import CHECKS, CheckResult, MonitorReference, MonitorWindow
from loopml.monitor._reports import (
    MonitorRecord,
    MonitorReportRecord,
    find_monitor,
    history,
    monitor_record,
    report_record,
)
from loopml.monitor._spec import MonitorSpec, default_spec, load_spec
from loopml.monitor.alerts import raise_alert, resolve_alerts
from loopml.monitor.drift import profile_frame
from loopml.workspace import Workspace

__all__ = ["define_monitor", "due_monitors", "run_monitor", "spec_of"]

_SAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
#: Checks whose failure means the data moved; the others mean the service is degraded.
_DRIFT_CHECKS = ("schema", "data_drift", "prediction_drift", "outliers", "segments")
_STATE = "_state"


def _col(feature: str) -> str:
    """The log column of a feature (``f_`` + the name made path-safe, as the log writes it)."""
    return "f_" + _SAFE_RE.sub("_", feature)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _family(duck_type: str) -> str:
    t = duck_type.upper()
    if t == "BOOLEAN":
        return "boolean"
    if any(k in t for k in ("INT",)):
        return "integer"
    if any(k in t for k in ("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
        return "float"
    return "string"


# --------------------------------------------------------------- define


def spec_of(record: MonitorRecord) -> MonitorSpec:
    """The validated spec of a stored monitor."""
    return MonitorSpec.from_dict({k: v for k, v in record.spec.items() if k != _STATE})


def define_monitor(ws: Workspace, spec: MonitorSpec | dict[str, Any] | str) -> MonitorRecord:
    """Create or replace the monitor ``spec.name`` (audited ``monitor.define``); schedules its next run.

    Raises:
        SpecError: the spec is invalid (names the key and the allowed values).
    """
    spec = load_spec(spec)
    now = utcnow()
    next_due = Cron.parse(spec.schedule).next_after(now) if spec.schedule and spec.enabled else None
    data = spec.to_dict()
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        row = s.execute(select(Monitor).where(Monitor.name == spec.name).with_for_update()).scalar_one_or_none()
        before = None
        if row is None:
            row = Monitor(name=spec.name, endpoint=spec.endpoint, spec=data, schedule=spec.schedule,
                          enabled=spec.enabled, next_due_at=next_due, created_at=now, created_by=ws.actor)
            s.add(row)
        else:
            before = {k: v for k, v in (row.spec or {}).items() if k != _STATE}
            old_ref = before.get("reference")
            state = dict((row.spec or {}).get(_STATE) or {})
            if old_ref != data["reference"]:
                state.pop("reference_digest", None)  # a new pinned window is profiled again
            row.spec = {**data, _STATE: state} if state else data
            row.endpoint = spec.endpoint
            row.schedule = spec.schedule
            row.enabled = spec.enabled
            row.next_due_at = next_due
        s.flush()
        tx.audit("monitor.define", "monitor", spec.name, before=before, after=data)
        return monitor_record(row)


def due_monitors(ws: Workspace, now: datetime | None = None) -> list[str]:
    """Names of the enabled, scheduled monitors whose next run is due at ``now``."""
    now = now or utcnow()
    with ws.store.read() as s:
        rows = s.execute(
            select(Monitor.name).where(Monitor.enabled.is_(True), Monitor.next_due_at.is_not(None),
                                       Monitor.next_due_at <= now).order_by(Monitor.next_due_at)
        ).scalars().all()
    return list(rows)


# ---------------------------------------------------------------- window


class _Log:
    """A DuckDB view ``win`` over the monitor's window of the log (closed by the caller)."""

    def __init__(self, ws: Workspace, spec: MonitorSpec, now: datetime) -> None:
        from loopml.predictions import open_view

        secs = spec.window_seconds
        self.since = now - timedelta(seconds=secs) if secs is not None else None
        self.until = now
        self.con = open_view(ws, spec.endpoint, since=self.since, until=self.until, name="log")
        if spec.window_rows is not None:
            self.con.execute(f"CREATE VIEW win AS SELECT * FROM log ORDER BY ts DESC LIMIT {int(spec.window_rows)}")
        else:
            self.con.execute("CREATE VIEW win AS SELECT * FROM log")
        self.columns = {r[0]: r[1] for r in self.con.execute("DESCRIBE win").fetchall()}

    def served(self) -> tuple[str, int] | None:
        """The (model name, version) that served most rows of the window."""
        if "model_name" not in self.columns:
            return None
        rows = self.con.execute(
            "SELECT model_name, model_version, count(*) AS n FROM win WHERE model_name IS NOT NULL "
            "GROUP BY 1, 2 ORDER BY n DESC, model_version DESC LIMIT 1").fetchall()
        row = rows[0] if rows else None
        return None if row is None or row[1] is None else (str(row[0]), int(row[1]))

    def load(self, columns: dict[str, str]) -> pd.DataFrame:
        """The window's rows with ``columns`` (output name -> log column), only those columns."""
        select_ = ", ".join(f"{_q(src)} AS {_q(out)}" for out, src in columns.items())
        table = self.con.sql(f"SELECT {select_} FROM win").to_arrow_table()
        import pyarrow as pa

        for i, f in enumerate(table.schema):  # DuckDB says Etc/UTC; loopml shows UTC
            if pa.types.is_timestamp(f.type) and f.type.tz:
                table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit, tz="UTC")))
        return table.to_pandas()

    def close(self) -> None:
        self.con.close()


def _features_in_log(columns: dict[str, str]) -> dict[str, str]:
    """Feature name (as the log spells it, ``f_`` stripped) -> type family."""
    return {c[2:]: _family(t) for c, t in columns.items() if c.startswith("f_")}


# ------------------------------------------------------------- reference


def _model_reference(ws: Workspace, spec: MonitorSpec, served: tuple[str, int] | None) -> MonitorReference:
    from loopml.register import resolve

    ref = spec.model or (f"{served[0]}/{served[1]}" if served else f"{spec.endpoint}@champion")
    try:
        rec = resolve(ws, ref)
    except LoopmlError as exc:
        return MonitorReference(model_ref=ref, reason=f"model {ref!r} cannot be resolved: {exc}")
    reason = None if rec.profile else f"model version {rec.ref} has no reference profile"
    return MonitorReference.build(profile=rec.profile, signature=rec.signature, evaluation=rec.evaluation,
                                  task=rec.task, model_ref=rec.ref, reason=reason)


def _pinned_reference(ws: Workspace, spec: MonitorSpec, record: MonitorRecord | None,
                      model: MonitorReference) -> MonitorReference:
    """Profile the pinned log window once; later runs read the stored profile by digest."""
    state = dict(((record.spec if record else {}) or {}).get(_STATE) or {})
    digest = state.get("reference_digest")
    if digest and ws.artifacts.exists(digest):
        profile = json.loads(ws.artifacts.get_bytes(digest))
    else:
        from loopml.predictions import query_predictions

        pinned = spec.reference
        assert isinstance(pinned, dict)
        try:
            df = query_predictions(ws, spec.endpoint, since=pinned["since"], until=pinned["until"])
        except NotFoundError as exc:
            return replace(model, profile=None, reason=f"pinned reference window: {exc}", source="window")
        df = df[df["status"].fillna(200) < 400] if "status" in df.columns else df
        if df.empty:
            return replace(model, profile=None, source="window",
                           reason=f"the pinned reference window {pinned['since']} .. {pinned['until']} has no rows")
        feats = {c[2:]: c for c in df.columns if c.startswith("f_") and df[c].notna().any()}
        data = {name: df[col] for name, col in feats.items()}
        if "prediction" in df.columns and df["prediction"].notna().any():
            data["prediction"] = df["prediction"]
        frame = pd.DataFrame(data)
        profile = profile_frame(frame)
        seg = spec.checks.get("segments")
        if seg is not None:
            params = spec.check_params("segments")
            profile["segments"] = {}
            for col in params["columns"]:
                if col not in frame.columns:
                    continue
                key = frame[col].astype(str)
                profile["segments"][col] = {
                    str(v): profile_frame(frame[(key == v).to_numpy()].drop(columns=[col]))
                    for v, n in key.value_counts().head(params["max_segments"]).items() if n >= params["min_rows"]}
        digest = ws.artifacts.put_bytes(json.dumps(profile).encode(), media_type="application/json",
                                        meta={"kind": "monitor.reference", "monitor": spec.name}).digest
        if record is not None:
            with ws.store.write(ws.actor) as tx:
                row = tx.session.get(Monitor, record.id)
                if row is not None:
                    row.spec = {**(row.spec or {}), _STATE: {**state, "reference_digest": digest}}
    built = MonitorReference.build(profile=profile, signature=model.contract, evaluation=model.evaluation,
                                   task=model.task, model_ref=model.model_ref, source="window")
    built.features = [f for f in built.features if f in profile["columns"]]
    return built


# ------------------------------------------------------------------ run


def _status(results: dict[str, CheckResult]) -> str:
    failed = [n for n, r in results.items() if r.status == "fail"]
    if any(n not in _DRIFT_CHECKS or results[n].details.get("degraded") for n in failed):
        return "degraded"
    return "drift" if failed else "ok"


def _failing_items(res: CheckResult) -> list[str]:
    """What the alert context names: drifted features, failing columns or segments, breaches."""
    d = res.details
    if res.name == "data_drift":
        return list(d.get("drifted_columns", []))
    if res.name == "prediction_drift":
        return ["prediction"]
    if res.name == "schema":
        return [*d.get("missing", []), *d.get("new", []), *[r["column"] for r in d.get("retyped", [])]]
    if res.name == "quality":
        return list(d.get("failing_columns", []))
    if res.name == "outliers":
        return list(d.get("columns_over", []))
    if res.name == "segments":
        return list(d.get("failing", []))
    if res.name == "health":
        return list(d.get("breaches", []))
    return []


def _message(spec: MonitorSpec, res: CheckResult) -> str:
    m = res.metrics
    items = _failing_items(res)
    what = {
        "data_drift": f"data drift in {m.get('n_drifted')} of {m.get('n_features')} features",
        "prediction_drift": "prediction drift",
        "schema": "schema drift",
        "quality": "data quality below the contract",
        "outliers": f"outlier share {m.get('row_share', 0):.2%} (reference {m.get('expected_row_share', 0):.2%})",
        "performance": f"{m.get('metric')} dropped by {m.get('drop', 0):.3f} ({m.get('value', 0):.3f} vs "
                       f"{m.get('baseline', 0) or 0:.3f}, {m.get('n_labelled')} labelled rows)",
        "segments": "segments drifted or degraded",
        "health": "service health",
    }[res.name]
    tail = f": {', '.join(map(str, items[:8]))}" if items else ""
    return f"{spec.endpoint} [{spec.name}] {what}{tail}"


def _apply_alerts(ws: Workspace, spec: MonitorSpec, monitor_id: int | None, report_id: int,
                  results: dict[str, CheckResult], window: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    dd = results.get("data_drift")
    drifted = list(dd.details.get("drifted_columns", [])) if dd is not None else []
    for rule in spec.alerts:
        res = results.get(rule.check)
        key = f"monitor:{spec.name}:{rule.check}"
        if res is None or res.status == "skipped":
            out.append({"check": rule.check, "action": "unchanged", "dedup_key": key})
            continue
        if res.status == "fail":
            context = {"monitor": spec.name, "endpoint": spec.endpoint, "check": rule.check, "report_id": report_id,
                       "window": window, "features": _failing_items(res), "metrics": res.to_dict()["metrics"],
                       "drifted_features": drifted}
            alert = raise_alert(ws, rule=f"monitor.{rule.check}", message=_message(spec, res), severity=rule.severity,
                                endpoint=spec.endpoint, dedup_key=key, context=context,
                                channels=[dict(c) for c in rule.channels], cooldown_s=rule.cooldown_s,
                                monitor_id=monitor_id, report_id=report_id, now=now)
            out.append({"check": rule.check, "action": "raised" if alert.opened else "folded", "alert_id": alert.id,
                        "severity": rule.severity, "message": alert.message, "count": alert.count, "dedup_key": key})
        else:
            n = resolve_alerts(ws, key, now=now)
            out.append({"check": rule.check, "action": "resolved" if n else "none", "dedup_key": key})
    return out


def _summary(status: str, results: dict[str, CheckResult], n_rows: int, model_ref: str | None) -> dict[str, Any]:
    drift = results.get("data_drift")
    per = (drift.details.get("per_feature", []) if drift and drift.status != "skipped" else [])
    return {
        "status": status, "n_rows": n_rows, "model": model_ref,
        "checks": {n: r.status for n, r in results.items()},
        "failed": [n for n, r in results.items() if r.status == "fail"],
        "skipped": {n: r.reason for n, r in results.items() if r.status == "skipped"},
        "drift_share": drift.metrics.get("drift_share") if drift else None,
        "drifted_features": drift.details.get("drifted_columns", []) if drift else [],
        "feature_effects": {p["column"]: p["effect"] for p in per},
    }


def run_monitor(ws: Workspace, name_or_endpoint: str, *, now: datetime | None = None) -> MonitorReportRecord:
    """Run a monitor now (a defined one by name or endpoint, else the endpoint's default monitor).

    Stores the report (JSON + HTML), moves the schedule on and applies the alert
    rules. A check that cannot run is reported as skipped with its reason.

    Raises:
        NotFoundError: no monitor has this name and no endpoint logged under it.
    """
    from loopml.monitor._html import render_report

    t_start = time.perf_counter()
    now = now or utcnow()
    record = find_monitor(ws, name_or_endpoint)
    spec = spec_of(record) if record is not None else default_spec(name_or_endpoint)
    timings: dict[str, float] = {}
    try:
        log: _Log | None = _Log(ws, spec, now)
    except NotFoundError:
        if record is None:
            raise NotFoundError(
                f"no monitor is named {name_or_endpoint!r} and no endpoint of that name has logged predictions; "
                "define one with `loopml monitor define FILE.yaml`") from None
        log = None  # a defined monitor of an endpoint that has logged nothing yet: every check skips
    try:
        served = log.served() if log is not None else None
        reference = _model_reference(ws, spec, served)
        if spec.reference != "model":
            reference = _pinned_reference(ws, spec, record, reference)
        timings["reference_s"] = time.perf_counter() - t_start
        window = _window(ws, spec, log, reference, now)
        timings["load_s"] = time.perf_counter() - t_start - timings["reference_s"]
    finally:
        if log is not None:
            log.close()
    results: dict[str, CheckResult] = {}
    for name in spec.checks:
        check = CHECKS[name](**spec.check_params(name)).fit(reference)
        results[name] = check.score(window)
    timings["checks_s"] = sum(r.duration_s for r in results.values())
    status = _status(results)
    win_info = {"start": window.start.isoformat() if window.start else None,
                "end": window.end.isoformat() if window.end else None, "n_rows": window.n_rows, "spec": spec.window}
    report: dict[str, Any] = {
        "monitor": spec.name, "endpoint": spec.endpoint, "status": status, "window": win_info,
        "reference": {"source": reference.source, "model": reference.model_ref, "reason": reference.reason,
                      "n_rows": (reference.profile or {}).get("n_rows"), "features": reference.features},
        "spec": spec.to_dict(), "checks": {n: r.to_dict() for n, r in results.items()}, "alerts": [],
        "created_at": now.isoformat(),
    }
    summary = _summary(status, results, window.n_rows, reference.model_ref)
    monitor_id = record.id if record is not None else None
    with ws.store.write(ws.actor) as tx:
        row = MonitorReport(monitor_id=monitor_id, endpoint=spec.endpoint, window_start=window.start,
                            window_end=window.end, n_rows=window.n_rows, status=status, summary=summary,
                            report=report, created_at=now)
        tx.session.add(row)
        tx.session.flush()
        report_id = row.id
    report["alerts"] = _apply_alerts(ws, spec, monitor_id, report_id, results, win_info, now)
    summary["alerts"] = [a for a in report["alerts"] if a["action"] in ("raised", "folded", "resolved")]
    timings["total_s"] = time.perf_counter() - t_start
    report["timings"] = {k: round(v, 4) for k, v in timings.items()}
    full = {"id": report_id, "endpoint": spec.endpoint, "status": status, "summary": summary, "report": report,
            "created_at": now.isoformat(), "n_rows": window.n_rows}
    html = render_report(full, [*history(ws, spec.endpoint, before_id=report_id), full])
    digest = ws.artifacts.put_bytes(html.encode("utf-8"), media_type="text/html",
                                    meta={"kind": "monitor.report", "report_id": report_id}).digest
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(MonitorReport, report_id)
        if row is None:  # pragma: no cover - deleted under our feet
            raise MonitorError(f"monitor report {report_id} vanished while it was being written")
        row.report = report
        row.summary = summary
        row.html_digest = digest
        if record is not None:
            mon = tx.session.get(Monitor, record.id)
            if mon is not None:
                mon.last_run_at = now
                mon.next_due_at = Cron.parse(spec.schedule).next_after(now) if spec.schedule and spec.enabled else None
        tx.audit("monitor.run", "monitor_report", report_id,
                 after={"monitor": spec.name, "endpoint": spec.endpoint, "status": status,
                        "failed": summary["failed"], "n_rows": window.n_rows})
        tx.session.flush()
        return report_record(row)


def _window(ws: Workspace, spec: MonitorSpec, log: _Log | None, reference: MonitorReference,
            now: datetime) -> MonitorWindow:
    """Load only what the checks need: reference features, segment columns, prediction, service columns."""
    if log is None:
        return MonitorWindow(frame=pd.DataFrame(), start=None, end=now, n_rows=0)
    cols = log.columns
    log_types = _features_in_log(cols)
    wanted: dict[str, str] = {}
    for f in reference.features:
        if _col(f) in cols:
            wanted[f] = _col(f)
    if "segments" in spec.checks:
        for c in spec.check_params("segments")["columns"]:
            if _col(c) in cols:
                wanted[c] = _col(c)
            elif c in cols:
                wanted[c] = c
    for c in ("prediction", "ts", "latency_ms", "status", "row"):
        if c in cols:
            wanted[c] = c
    df = log.load(wanted)
    n_all = len(df)
    start = log.since if log.since is not None else (df["ts"].min() if n_all else None)
    end = log.until if spec.window_rows is None else (df["ts"].max() if n_all else now)
    service = df[[c for c in ("ts", "latency_ms", "status", "row") if c in df.columns]]
    if "status" in df.columns:
        ok = df["status"].isna() | (df["status"] < 400)
        frame = df if bool(ok.all()) else df[ok.to_numpy()]
    else:
        frame = df
    present = {f for f in reference.features if f in frame.columns}
    empty = {f for f in present if not frame[f].notna().any()}
    # The log spells features path-safe: map back to the reference's names.
    safe = {_SAFE_RE.sub("_", f): f for f in reference.features}
    log_types = {safe.get(k, k): v for k, v in log_types.items()}

    def labels() -> pd.DataFrame:
        from loopml.predictions import feedback_files, join_feedback

        if not feedback_files(ws, spec.endpoint) or not n_all:
            return pd.DataFrame({"label": pd.Series([], dtype="object")})
        lo = df["ts"].min() if spec.window_rows is not None else start
        hi = (df["ts"].max() + pd.Timedelta(microseconds=1)) if spec.window_rows is not None else end
        j = join_feedback(ws, spec.endpoint, since=lo, until=hi)
        return j.rename(columns={c: safe.get(c[2:], c[2:]) for c in j.columns if c.startswith("f_")})

    return MonitorWindow(frame=frame.reset_index(drop=True), start=_py(start), end=_py(end), n_rows=len(frame),
                         log_types=log_types, empty_columns=empty, service=service, labels_loader=labels)


def _py(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
