"""The rollout controller: analyse, then promote, advance, hold or roll back.

It keeps no state of its own: everything it needs (step, when the step
started, the last analysis) is on the rollout row, so a controller killed
mid-rollout resumes from the store on restart, and deciding twice on the
same data gives the same answer (no traffic flapping).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from loopml.deploy import (
    RolloutRecord,
    advance,
    list_rollouts,
    promote,
    record_evidence,
    rollback,
    shadow_endpoint_name,
)
from loopml.kernel.exceptions import LoopmlError
from loopml.kernel.types import utcnow
from loopml.rollout._analysis import SignalResult, compare_versions, metric_comparison
from loopml.workspace import Workspace

__all__ = ["Decision", "analyze_rollout", "controller_tick", "shadow_endpoint"]

log = logging.getLogger("loopml.rollout")
_COLUMNS = ["request_id", "ts", "model_version", "status", "latency_ms", "prediction"]


def shadow_endpoint(endpoint: str) -> str:
    """Where a shadow candidate's answers are logged: beside, never inside, the endpoint's log."""
    return shadow_endpoint_name(endpoint)


@dataclass(frozen=True)
class Decision:
    endpoint: str
    rollout_id: int
    #: promote | advance | hold | rollback | skip
    action: str
    reason: str
    signals: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _window(ws: Workspace, endpoint: str, since: datetime, with_labels: bool) -> pd.DataFrame:
    from loopml.kernel.exceptions import NotFoundError
    from loopml.predictions import join_feedback, query_predictions

    try:
        if with_labels:
            frame = join_feedback(ws, endpoint, since=since)
        else:
            frame = query_predictions(ws, endpoint, since=since, columns=_COLUMNS)
    except NotFoundError:
        return pd.DataFrame({c: [] for c in [*_COLUMNS, "label"]})
    return frame


def _elapsed(r: RolloutRecord, now: datetime) -> float:
    return (now - r.step_started_at).total_seconds()


def _last_analysis(r: RolloutRecord) -> datetime | None:
    for entry in reversed(r.evidence):
        if "ts" in entry:
            return datetime.fromisoformat(entry["ts"])
    return None


def analyze_rollout(ws: Workspace, r: RolloutRecord, *, now: datetime | None = None, force: bool = False) -> Decision:
    """One analysis of a running rollout, applied (traffic moved, evidence stored)."""
    now = now or utcnow()
    cfg = r.config
    last = _last_analysis(r)
    if not force and last is not None and (now - last).total_seconds() < float(cfg["interval_s"]):
        return Decision(r.endpoint, r.id, "skip", "analysed less than interval_s ago", [])
    with_labels = bool(cfg.get("metric"))
    signals: list[SignalResult]
    if r.strategy == "blue-green":
        signals = [_standby_health(ws, r)]
    else:
        main = _window(ws, r.endpoint, r.step_started_at, with_labels)
        base = main[main["model_version"] == r.baseline_version]
        if r.strategy == "shadow":
            cand = _window(ws, shadow_endpoint(r.endpoint), r.step_started_at, with_labels)
            cand = cand[cand["model_version"] == r.candidate_version]
        else:
            cand = main[main["model_version"] == r.candidate_version]
        if r.strategy == "ab":
            signals = [*compare_versions(base, cand, cfg, with_labels=False), metric_comparison(base, cand, cfg)]
        else:
            signals = compare_versions(base, cand, cfg, with_labels=with_labels)
    action, reason = _decide(r, signals, _elapsed(r, now))
    evidence = {
        "ts": now.isoformat(), "step": r.step, "candidate_weight": r.candidate_weight,
        "window_start": r.step_started_at.isoformat(), "signals": [s.to_dict() for s in signals],
        "decision": action, "reason": reason,
    }
    if action == "rollback":
        rollback(ws, r.endpoint, reason=reason, evidence=evidence)
    elif action == "promote":
        promote(ws, r.endpoint, reason=reason, evidence=evidence)
    elif action == "advance":
        advance(ws, r.endpoint, evidence=evidence)
    else:
        record_evidence(ws, r.id, evidence)
    return Decision(r.endpoint, r.id, action, reason, evidence["signals"])


def _standby_health(ws: Workspace, r: RolloutRecord) -> SignalResult:
    """Blue-green: the candidate must load (hash verified) and answer beside the baseline."""
    from loopml.register import load_model

    try:
        load_model(ws, f"{r.model_name}/{r.candidate_version}")
    except LoopmlError as exc:
        return SignalResult("standby_health", "breach", None, None, None, None, 0, 0, f"candidate does not load: {exc}")
    return SignalResult("standby_health", "ok", None, None, None, None, 0, 0, "candidate loaded and verified")


def _decide(r: RolloutRecord, signals: list[SignalResult], elapsed_s: float) -> tuple[str, str]:
    cfg = r.config
    breaches = [s for s in signals if s.status == "breach"]
    if breaches:
        return "rollback", "; ".join(f"{s.name} breached: {s.detail}" for s in breaches)
    waiting = [s for s in signals if s.status == "insufficient"]
    if elapsed_s < float(cfg.get("min_seconds", 0)):
        return "hold", f"step held {elapsed_s:.0f}s of {cfg.get('min_seconds')}s"
    if r.strategy == "ab":
        metric = signals[-1]
        if metric.status == "better" and cfg.get("auto"):
            return "promote", f"candidate significantly better: {metric.detail}"
        return "hold", metric.detail
    if waiting:
        return "hold", "waiting for data: " + "; ".join(f"{s.name}: {s.detail}" for s in waiting)
    if r.strategy == "shadow" and not cfg.get("auto"):
        return "hold", "shadow healthy; promote manually when ready"
    if r.strategy == "canary":
        return "advance", f"step {r.step} ({r.candidate_weight:.0%}) healthy"
    return "promote", "candidate healthy"


def controller_tick(ws: Workspace, *, now: datetime | None = None) -> list[Decision]:
    """Analyse every running rollout that is due; one failing rollout never blocks the others."""
    decisions = []
    for r in list_rollouts(ws, status="running"):
        try:
            decisions.append(analyze_rollout(ws, r, now=now))
        except LoopmlError:
            log.exception("rollout %s on %s could not be analysed", r.id, r.endpoint)
    return decisions
