"""The rollout controller: analyse, then promote, advance, hold or roll back.

It keeps no state of its own: everything it needs (step, when the step
started, the last analysis) is on the rollout row, so a controller killed
mid-rollout resumes from the store on restart, and deciding twice on the
same data gives the same answer (no traffic flapping).

Cadence: :func:`analyze_running` is cheap enough to call every second (one
indexed read when no rollout runs; the scheduler does so on its own thread).
Each running rollout gets a *full* analysis every ``interval_s`` (10 s), which
may hold, advance, promote or roll back, judged at the rollout's ``alpha`` spent
across its looks and signals (:func:`~loopml.rollout._analysis.look_alpha`: the
chance of any false breach over the whole rollout stays under ``alpha``), and a *quick look*
at every call in between, which only rolls back, and only on conclusive
evidence (p < ``early_alpha`` = 0.001, the Haybittle-Peto rule of interim
looks in trials). So a clear breach is acted on within a second or two of
its rows reaching the log, while looking ten times as often does not
multiply false rollbacks: judged at ``alpha`` every second, a healthy
candidate was rolled back on chance latency and divergence gaps in the
breach bench (bench/rollout/RESULTS.md). A quick look that finds nothing
stores nothing; a full hold that says what the previous one said replaces
it in the evidence (``first_ts``, ``analyses``); every decision that moves
traffic is stored in full.

Blue-green switches only to a standby that scored rows: the serving
processes health-check the standby where they load it and store the verdict
on the rollout; the controller loads and checks it too. A breach anywhere
rolls back; no serving report yet holds. After a blue-green promotion the
old version is released ``keep_warm_s`` later (:func:`controller_tick`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from loopml.deploy import (
    RolloutRecord,
    advance,
    get_rollout,
    list_rollouts,
    promote,
    record_evidence,
    release_standby,
    rollback,
    shadow_endpoint_name,
)
from loopml.kernel.exceptions import DeploymentError, LoopmlError
from loopml.kernel.types import utcnow
from loopml.rollout._analysis import SignalResult, compare_versions, look_alpha, metric_comparison
from loopml.workspace import Workspace

__all__ = ["Decision", "analyze_rollout", "analyze_running", "controller_tick", "shadow_endpoint"]

log = logging.getLogger("loopml.rollout")
_COLUMNS = ["request_id", "ts", "model_version", "status", "latency_ms", "prediction"]


def shadow_endpoint(endpoint: str) -> str:
    """Where a shadow candidate's answers are logged: beside, never inside, the endpoint's log."""
    return shadow_endpoint_name(endpoint)


@dataclass(frozen=True)
class Decision:
    endpoint: str
    rollout_id: int
    #: promote | advance | hold | rollback | skip | release
    action: str
    reason: str
    signals: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The windows rollouts look at, by (log folder, endpoint, step start), with when each was last read, least
#: recently read first: a look opens only the log files that are new since the last one (a long step's
#: window is not read again every second).
_TAILS: OrderedDict[tuple[str, str, datetime], tuple[Any, float]] = OrderedDict()
_TAILS_LOCK = threading.Lock()
_MAX_TAILS = 16
#: A tail nobody read for this long belongs to a finished step or rollout: its rows are let go.
_TAIL_IDLE_S = 120.0


def _tail(ws: Workspace, endpoint: str, since: datetime) -> Any:
    from loopml.predictions import WindowTail

    key = (ws.settings.resolved_predictions_url, endpoint, since)
    now = time.monotonic()
    with _TAILS_LOCK:
        tail = _TAILS.pop(key, (None, now))[0] or WindowTail(ws, endpoint, since, _COLUMNS)
        while _TAILS and (len(_TAILS) >= _MAX_TAILS or next(iter(_TAILS.values()))[1] < now - _TAIL_IDLE_S):
            _TAILS.popitem(last=False)
        _TAILS[key] = (tail, now)
    return tail


def _window(ws: Workspace, endpoint: str, since: datetime, with_labels: bool) -> pd.DataFrame:
    from loopml.kernel.exceptions import NotFoundError
    from loopml.predictions import join_feedback

    try:
        if with_labels:
            frame = join_feedback(ws, endpoint, since=since)
        else:
            frame = _tail(ws, endpoint, since).read()
    except NotFoundError:
        return pd.DataFrame({c: [] for c in [*_COLUMNS, "label"]})
    return frame


def _elapsed(r: RolloutRecord, now: datetime) -> float:
    return (now - r.step_started_at).total_seconds()


def _full_looks(r: RolloutRecord) -> int:
    """Full analyses of ``r`` so far (a collapsed entry counts its ``analyses``)."""
    return sum(int(e.get("analyses", 1)) for e in r.evidence if "decision" in e and e.get("look", "full") == "full")


def _tests(r: RolloutRecord, cfg: dict[str, Any]) -> int:
    """How many signals one analysis tests (error rate, latency, divergence, and the metric when labelled)."""
    return 4 if r.strategy == "ab" or cfg.get("metric") else 3


def _last_analysis(r: RolloutRecord) -> datetime | None:
    for entry in reversed(r.evidence):
        if "ts" in entry:
            return datetime.fromisoformat(entry["ts"])
    return None


def analyze_rollout(ws: Workspace, r: RolloutRecord, *, now: datetime | None = None, force: bool = False) -> Decision:
    """One look at a running rollout, applied (traffic moved, evidence stored).

    A full analysis every ``interval_s`` (or when ``force``d) judges each signal at
    ``look_alpha(alpha, look, signals)`` and may hold, advance, promote or roll back. A look in between
    is *quick*: it judges at ``early_alpha`` (split across the signals) and can
    only roll back, on conclusive evidence; when nothing is conclusive it is a ``skip`` and stores
    nothing. Blue-green (a health check, not a test on samples) and rollouts without ``early_alpha``
    have no quick looks.
    """
    now = now or utcnow()
    cfg = r.config
    last = _last_analysis(r)
    full = force or last is None or (now - last).total_seconds() >= float(cfg["interval_s"])
    early_alpha = float(cfg.get("early_alpha") or 0.0)
    if not full and (early_alpha <= 0 or r.strategy == "blue-green"):
        return Decision(r.endpoint, r.id, "skip", "analysed less than interval_s ago", [])
    tests, look = _tests(r, cfg), _full_looks(r) + 1
    alpha = look_alpha(float(cfg["alpha"]), look, tests) if full else min(early_alpha, float(cfg["alpha"])) / tests
    signals = _signals(ws, r, {**cfg, "alpha": alpha, "early_alpha": early_alpha / tests})
    if full:
        action, reason = _decide(r, signals, _elapsed(r, now))
    else:
        breaches = [s for s in signals if s.status == "breach"]
        if not breaches:
            return Decision(r.endpoint, r.id, "skip",
                            f"quick look (p < {alpha:.2g} per signal): nothing conclusive; full analysis every "
                            f"{float(cfg['interval_s']):g}s", [s.to_dict() for s in signals])
        action = "rollback"
        reason = "; ".join(f"{s.name} breached: {s.detail}" for s in breaches) + (
            f" (quick look between analyses: p < {alpha:.2g} per signal)")
    evidence = {
        "ts": now.isoformat(), "step": r.step, "candidate_weight": r.candidate_weight,
        "window_start": r.step_started_at.isoformat(), "signals": [s.to_dict() for s in signals],
        "decision": action, "reason": reason, "look": "full" if full else "quick",
        "alpha": alpha, "look_index": look if full else None,
        # What a repeated hold must match to replace the last entry instead of adding one.
        "state": f"{action}|{r.step}|" + ",".join(f"{s.name}={s.status}" for s in signals),
    }
    if action == "rollback":
        rollback(ws, r.endpoint, reason=reason, evidence=evidence)
    elif action == "promote":
        promote(ws, r.endpoint, reason=reason, evidence=evidence)
    elif action == "advance":
        advance(ws, r.endpoint, evidence=evidence)
    else:
        record_evidence(ws, r.id, evidence, collapse=True)
    return Decision(r.endpoint, r.id, action, reason, evidence["signals"])


def analyze_endpoint(ws: Workspace, endpoint: str) -> Decision:
    """Analyse the endpoint's running rollout once, now, and apply the decision (``rollout analyze``).

    Raises:
        DeploymentError: the endpoint has no running rollout.
    """
    r = get_rollout(ws, endpoint)
    if r is None or r.status != "running":
        state = "no rollout" if r is None else f"rollout {r.id} is {r.status}"
        raise DeploymentError(f"endpoint {endpoint!r} has nothing to analyse: {state}")
    return analyze_rollout(ws, r, force=True)


def _signals(ws: Workspace, r: RolloutRecord, cfg: dict[str, Any]) -> list[SignalResult]:
    """Every signal of the rollout's current step window, judged with ``cfg``."""
    if r.strategy == "blue-green":
        return [_standby_health(ws, r)]
    with_labels = bool(cfg.get("metric"))
    main = _window(ws, r.endpoint, r.step_started_at, with_labels)
    base = main[main["model_version"] == r.baseline_version]
    if r.strategy == "shadow":
        cand = _window(ws, shadow_endpoint(r.endpoint), r.step_started_at, with_labels)
        cand = cand[cand["model_version"] == r.candidate_version]
    else:
        cand = main[main["model_version"] == r.candidate_version]
    if r.strategy == "ab":
        return [*compare_versions(base, cand, cfg, with_labels=False), metric_comparison(base, cand, cfg)]
    return compare_versions(base, cand, cfg, with_labels=with_labels)


def _standby_health(ws: Workspace, r: RolloutRecord) -> SignalResult:
    """Blue-green: the candidate must load (hash verified) and score rows, here and in a serving process.

    Breach: it does not load, or it raises / answers wrong-shaped on probe rows (here or as reported by
    any serving process that loaded it as standby). Insufficient (hold): no serving process has reported
    it loaded and checked yet.
    """
    from loopml.register import load_model
    from loopml.serve import ServedModel, check_health

    def signal(status: str, detail: str, n: int = 0) -> SignalResult:
        return SignalResult("standby_health", status, None, None, None, None, 0, n, detail)

    reports = [e for e in r.evidence if e.get("kind") == "health_check" and e.get("version") == r.candidate_version]
    failed = [e for e in reports if e.get("status") == "breach"]
    if failed:
        return signal("breach", f"serving process {failed[-1].get('server')}: {failed[-1].get('detail')}",
                      int(failed[-1].get("rows") or 0))
    try:
        health = check_health(ServedModel(load_model(ws, f"{r.model_name}/{r.candidate_version}")))
    except LoopmlError as exc:
        return signal("breach", f"candidate does not load: {exc}")
    if not health.healthy:
        return signal("breach", health.detail, health.rows)
    if not reports:
        return signal("insufficient", "no serving process has loaded and checked the standby yet", health.rows)
    servers = sorted({str(e.get("server")) for e in reports})
    return signal("ok", f"{health.detail}; checked as standby by {len(servers)} serving process(es)", health.rows)


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


def _release_due(r: RolloutRecord, now: datetime) -> bool:
    keep = r.config.get("keep_warm_s")
    return (r.status == "promoted" and keep is not None and r.ended_at is not None
            and (now - r.ended_at).total_seconds() >= float(keep)
            and not any(e.get("kind") == "release" for e in r.evidence))


def analyze_running(ws: Workspace, *, now: datetime | None = None,
                    rollouts: list[RolloutRecord] | None = None) -> list[Decision]:
    """Analyse every running rollout that is due (``skip`` for one analysed less than ``interval_s`` ago).

    One indexed read (rollouts by status) when none is running, so it can run every second;
    ``rollouts``: the running ones, when the caller has just read them. One failing rollout never
    blocks the others.
    """
    now = now or utcnow()
    decisions = []
    if rollouts is None:
        rollouts = list_rollouts(ws, status="running")  # at most one per endpoint, always its latest
    for r in rollouts:
        try:
            decisions.append(analyze_rollout(ws, r, now=now))
        except LoopmlError:
            log.exception("rollout %s on %s could not be analysed", r.id, r.endpoint)
    return decisions


def controller_tick(ws: Workspace, *, now: datetime | None = None, analyse: bool = True) -> list[Decision]:
    """Analyse every running rollout that is due, and release old versions kept warm past ``keep_warm_s``.

    ``analyse=False`` only releases (the scheduler's main tick, when :func:`analyze_running` has its own
    faster loop). One failing rollout never blocks the others.
    """
    now = now or utcnow()
    decisions = analyze_running(ws, now=now) if analyse else []
    for r in list_rollouts(ws, latest_only=True):
        if r.status != "running" and _release_due(r, now):
            try:
                done = release_standby(ws, r.endpoint, now=now)
            except LoopmlError:
                log.exception("rollout %s on %s: the old version could not be released", r.id, r.endpoint)
                continue
            if done is not None:
                entry = done.evidence[-1]
                reason = (f"version {entry['version']} kept warm {entry['keep_warm_s']:g}s, released"
                          if entry.get("released") else "the old version was no longer kept warm")
                decisions.append(Decision(r.endpoint, r.id, "release", reason, []))
    return decisions
