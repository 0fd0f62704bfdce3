"""Rollouts: move an endpoint's traffic from a baseline version to a candidate.

Strategies: ``direct`` (all at once), ``canary`` (weight steps), ``blue-green``
(candidate loaded beside the baseline, then one atomic switch, the old one
kept warm), ``shadow`` (a copy of every request, answers logged, never
returned) and ``ab`` (a fixed, sticky split judged by a significance test).

The state machine lives here; *deciding* (the online analysis) lives above
the prediction log, in ``loopml.rollout``, which calls :func:`advance`,
:func:`promote` or :func:`rollback` with its evidence. Promotion moves the
alias (``champion``) in the same transaction as the traffic; rollback puts
both back. Only a version that passed its gates gets traffic, unless a person
overrides with a reason, which is audited.

Blue-green keeps the old version warm after the switch: it stays in the
policy's ``standby`` (loaded by every serving process), so :func:`rollback`
of the promoted rollout is one policy change that routes to a loaded model.
``keep_warm_s`` later, :func:`release_standby` (called by the controller)
drops it with an audited traffic change and the servers unload it; rolling
back after that is a new deploy. Serving processes store the health check
of a standby they loaded (:func:`record_health_check`) on the running
rollout, where the controller reads it before switching.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from loopml.deploy._endpoints import (
    check_fraction,
    create_endpoint_row,
    lock_endpoint,
    make_policy,
    set_policy,
)
from loopml.kernel.exceptions import (
    DeploymentError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.kernel.types import ModelRef, utcnow
from loopml.metadata._orm import Endpoint, Rollout
from loopml.metadata.approvals_gate import require_traffic_approval
from loopml.metadata.store import Tx
from loopml.workspace import Workspace

__all__ = [
    "STRATEGIES",
    "RolloutRecord",
    "advance",
    "deploy",
    "get_rollout",
    "list_rollouts",
    "pause",
    "promote",
    "record_evidence",
    "record_health_check",
    "release_standby",
    "resume",
    "rollback",
]

STRATEGIES = ("direct", "canary", "blue-green", "shadow", "ab")

#: Documented defaults per strategy; any key can be overridden at deploy time.
#: ``interval_s``: seconds between two full analyses of a running rollout (at ``alpha``: hold,
#: advance, promote or roll back). ``early_alpha``: the scheduler also looks every second in
#: between, and rolls back when a breach is this conclusive; below ``min_requests`` an error-rate
#: breach is judged by an exact test at this level (see ``loopml.rollout``); 0 turns both off.
#: ``shadow_fraction``: the share of requests the shadow scores. A latency breach needs the
#: candidate's p95 both ``max_latency_ratio`` times the baseline's and ``min_latency_increase_ms``
#: above it: a model 3 ms slower on a 5 ms baseline is not a reason to roll back.
DEFAULTS: dict[str, dict[str, Any]] = {
    "_common": {
        "alias": "champion", "interval_s": 10.0, "alpha": 0.05, "early_alpha": 0.001,
        "max_error_rate_increase": 0.02, "max_latency_ratio": 1.5,
        "min_latency_increase_ms": 10.0, "max_divergence": 0.1,
        "metric": None, "max_metric_drop": 0.02, "min_labels": 100, "auto": True,
    },
    "direct": {},
    "canary": {"steps": [0.05, 0.25, 0.5, 1.0], "min_requests": 100, "min_seconds": 30.0},
    "blue-green": {"min_requests": 50, "min_seconds": 10.0, "keep_warm_s": 600.0},
    "shadow": {"min_requests": 200, "min_seconds": 30.0, "auto": False, "shadow_fraction": 1.0},
    "ab": {"split": 0.5, "min_requests": 500, "min_seconds": 60.0, "metric": "accuracy", "auto": False},
}


@dataclass(frozen=True)
class RolloutRecord:
    id: int
    endpoint: str
    model_name: str
    strategy: str
    baseline_version: int | None
    candidate_version: int
    status: str
    config: dict[str, Any]
    step: int
    step_started_at: datetime
    evidence: list[dict[str, Any]]
    override_reason: str | None
    created_at: datetime
    created_by: str
    ended_at: datetime | None

    @property
    def candidate_weight(self) -> float:
        if self.strategy == "canary":
            return float(self.config["steps"][self.step])
        return float(self.config.get("split", 0.0)) if self.strategy == "ab" else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidate_weight": self.candidate_weight}


#: Evidence entries kept per rollout; past it the oldest holds and health checks go first.
MAX_EVIDENCE = 200


def _appended(evidence: list[dict[str, Any]] | None, entry: dict[str, Any], *,
              collapse: bool = False) -> list[dict[str, Any]]:
    """``evidence`` plus ``entry``, bounded to :data:`MAX_EVIDENCE`.

    ``collapse``: an entry whose ``state`` equals the last entry's replaces it (keeping ``first_ts`` and
    counting ``analyses``), so a controller that looks every second stores one entry per change of
    state with the latest figures, not one per look. When the list is full, holds and health checks
    are dropped oldest first: the analyses that moved traffic stay.
    """
    items = list(evidence or [])
    last = items[-1] if items else None
    if collapse and last is not None and entry.get("state") is not None and last.get("state") == entry["state"]:
        items[-1] = {**entry, "first_ts": last.get("first_ts", last.get("ts")),
                     "analyses": int(last.get("analyses", 1)) + 1}
        return items
    items.append(entry)
    while len(items) > MAX_EVIDENCE:
        minor = next((i for i, e in enumerate(items)
                      if e.get("decision") == "hold" or e.get("kind") == "health_check"), 0)
        del items[minor]
    return items


def _record(row: Rollout, endpoint: Endpoint) -> RolloutRecord:
    return RolloutRecord(
        row.id, endpoint.name, endpoint.model_name, row.strategy, row.baseline_version, row.candidate_version,
        row.status, row.config, row.step, row.step_started_at, list(row.evidence or []), row.override_reason,
        row.created_at, row.created_by, row.ended_at,
    )


def _config(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    allowed = DEFAULTS["_common"] | DEFAULTS[strategy]
    unknown = set(options) - set(allowed)
    if unknown:
        raise ValidationError(
            f"{strategy} rollout: unknown option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}",
            field="options", rule="keys",
        )
    config = {**allowed, **options}
    if strategy == "canary":
        steps = [float(s) for s in config["steps"]]
        if not steps or any(not 0 < s <= 1 for s in steps) or steps != sorted(steps) or steps[-1] != 1.0:
            raise ValidationError(f"canary steps must rise within (0, 1] and end at 1.0; got {config['steps']}",
                                  field="steps", rule="order")
        config["steps"] = steps
    if strategy == "ab" and not 0 < float(config["split"]) < 1:
        raise ValidationError(f"ab split must be between 0 and 1; got {config['split']}", field="split", rule="range")
    if strategy == "shadow":
        config["shadow_fraction"] = check_fraction(config["shadow_fraction"], "shadow_fraction")
    for key in ("interval_s", "early_alpha", "min_latency_increase_ms"):
        if not isinstance(config[key], (int, float)) or isinstance(config[key], bool) or not config[key] >= 0:
            raise ValidationError(f"{strategy} rollout: {key} must be a number >= 0; got {config[key]!r}",
                                  field=key, rule="min")
    return config


def _policy_for(strategy: str, model: str, baseline: int | None, candidate: int, config: dict[str, Any], step: int) -> dict[str, Any]:
    if baseline is None or strategy == "direct":
        return make_policy(model, [(candidate, 1.0, "baseline")])
    if strategy == "canary":
        w = config["steps"][step]
        if w >= 1.0:
            return make_policy(model, [(candidate, 1.0, "baseline")], standby=[baseline])
        return make_policy(model, [(baseline, 1 - w, "baseline"), (candidate, w, "candidate")])
    if strategy == "blue-green":
        return make_policy(model, [(baseline, 1.0, "baseline")], standby=[candidate])
    if strategy == "shadow":
        return make_policy(model, [(baseline, 1.0, "baseline")], shadow=[candidate],
                           shadow_fraction=float(config.get("shadow_fraction", 1.0)))
    split = float(config["split"])
    return make_policy(model, [(baseline, 1 - split, "baseline"), (candidate, split, "candidate")], sticky=True)


def _check_gates(tx: Tx, model: str, version: int, override_reason: str | None) -> None:
    from loopml.register import resolve_in

    record = resolve_in(tx.session, ModelRef(name=model, version=version))
    if record.gates_passed:
        return
    if not override_reason:
        state = "failed its validation gates" if record.gates_passed is False else "has no gate result"
        raise PermissionDenied(
            f"model {model}/{version} {state}: it cannot receive traffic unless a person overrides "
            "with a recorded reason (--override-reason)"
        )
    tx.audit("rollout.override", "model_version", f"{model}/{version}", after={"gates_passed": record.gates_passed},
             reason=override_reason)


def _running(tx: Tx, endpoint: Endpoint) -> Rollout | None:
    return tx.session.execute(
        select(Rollout).where(Rollout.endpoint_id == endpoint.id, Rollout.status.in_(("running", "paused")))
        .with_for_update()
    ).scalar_one_or_none()


def deploy(
    ws: Workspace, endpoint: str, model_ref: str, *, strategy: str = "direct",
    override_reason: str | None = None, **options: Any,
) -> RolloutRecord:
    """Start sending ``endpoint``'s traffic to ``model_ref`` under ``strategy``.

    Raises:
        PermissionDenied: the version did not pass its gates and no override reason was given.
        DeploymentError: another rollout is in progress on the endpoint.
    """
    if strategy not in STRATEGIES:
        raise ValidationError(f"strategy {strategy!r} is unknown; allowed: {', '.join(STRATEGIES)}",
                              field="strategy", rule="enum")
    config = _config(strategy, options)
    ref = ModelRef.parse(model_ref)
    from loopml.register import resolve_in

    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        candidate = resolve_in(tx.session, ref)
        row = tx.session.execute(select(Endpoint).where(Endpoint.name == endpoint).with_for_update()).scalar_one_or_none()
        _check_gates(tx, candidate.name, candidate.version, override_reason)
        require_traffic_approval(tx.session, endpoint=endpoint, model=candidate.name, version=candidate.version,
                                 author=candidate.created_by)
        if row is None:
            policy = make_policy(candidate.name, [(candidate.version, 1.0, "baseline")])
            row = create_endpoint_row(tx, endpoint, candidate.name, policy, reason=override_reason)
            baseline = None
        else:
            if row.model_name != candidate.name:
                raise DeploymentError(f"endpoint {endpoint!r} serves model {row.model_name!r}, not {candidate.name!r}")
            if _running(tx, row) is not None:
                raise DeploymentError(f"endpoint {endpoint!r} has a rollout in progress; promote, roll back or wait")
            baselines = [r["version"] for r in row.policy["routes"] if r["role"] == "baseline"]
            baseline = baselines[0] if baselines else None
            if baseline == candidate.version:
                raise DeploymentError(f"endpoint {endpoint!r} already serves {candidate.name}/{candidate.version}")
        direct = strategy == "direct" or baseline is None
        rollout = Rollout(
            endpoint_id=row.id, strategy=strategy, baseline_version=baseline, candidate_version=candidate.version,
            status="promoted" if direct else "running", config=config, step=0, step_started_at=now, evidence=[],
            override_reason=override_reason, created_at=now, created_by=ws.actor, ended_at=now if direct else None,
        )
        tx.session.add(rollout)
        tx.session.flush()
        if baseline is not None:
            set_policy(tx, row, _policy_for(strategy, row.model_name, baseline, candidate.version, config, 0),
                       reason=f"{strategy} rollout {rollout.id} started", rollout_id=rollout.id)
        if direct and config["alias"]:
            _move_alias(tx, row.model_name, config["alias"], candidate.version, f"rollout {rollout.id} ({strategy})")
        tx.link(("model_version", f"{candidate.name}/{candidate.version}"), "rolled_out_by", ("rollout", rollout.id))
        tx.audit("rollout.start", "rollout", rollout.id, after={"endpoint": endpoint, "strategy": strategy,
                                                              "baseline": baseline, "candidate": candidate.version,
                                                              "config": config})
        return _record(rollout, row)


def _move_alias(tx: Tx, model: str, alias: str, version: int, reason: str, *, check_approval: bool = True) -> None:
    from loopml.register import move_alias_in

    move_alias_in(tx, model, alias, version, reason=reason, check_approval=check_approval)


def _require_traffic_approval(tx: Tx, row: Endpoint, version: int) -> None:
    from loopml.register import resolve_in

    record = resolve_in(tx.session, ModelRef(name=row.model_name, version=version))
    require_traffic_approval(tx.session, endpoint=row.name, model=row.model_name, version=version,
                             author=record.created_by)


def _current(tx: Tx, endpoint: str) -> tuple[Endpoint, Rollout]:
    row = lock_endpoint(tx.session, endpoint)
    rollout = _running(tx, row)
    if rollout is None:
        raise DeploymentError(f"endpoint {endpoint!r} has no rollout in progress")
    return row, rollout


def _finish(tx: Tx, row: Endpoint, rollout: Rollout, status: str, reason: str, evidence: dict[str, Any] | None) -> None:
    rollout.status = status
    rollout.ended_at = utcnow()
    if evidence:
        rollout.evidence = _appended(rollout.evidence, evidence)
    tx.audit(f"rollout.{'promote' if status == 'promoted' else 'rollback'}", "rollout", rollout.id,
             after={"endpoint": row.name, "candidate": rollout.candidate_version, "baseline": rollout.baseline_version,
                    "evidence": evidence}, reason=reason)


def promote(ws: Workspace, endpoint: str, *, reason: str | None = None, evidence: dict[str, Any] | None = None) -> RolloutRecord:
    """All traffic to the candidate and the alias with it, in one transaction (baseline kept warm)."""
    with ws.store.write(ws.actor) as tx:
        row, rollout = _current(tx, endpoint)
        _require_traffic_approval(tx, row, rollout.candidate_version)
        standby = [rollout.baseline_version] if rollout.baseline_version is not None else []
        set_policy(tx, row, make_policy(row.model_name, [(rollout.candidate_version, 1.0, "baseline")], standby=standby),
                   reason=reason or f"rollout {rollout.id} promoted", rollout_id=rollout.id)
        if rollout.config.get("alias"):
            _move_alias(tx, row.model_name, rollout.config["alias"], rollout.candidate_version,
                        f"rollout {rollout.id} promoted")
        _finish(tx, row, rollout, "promoted", reason or "promoted", evidence)
        return _record(rollout, row)


def _latest(tx: Tx, row: Endpoint) -> Rollout | None:
    return tx.session.execute(
        select(Rollout).where(Rollout.endpoint_id == row.id).order_by(Rollout.id.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()


def _kept_warm(row: Endpoint, rollout: Rollout | None) -> bool:
    """A promoted rollout whose baseline is still loaded as standby, behind its candidate."""
    if rollout is None or rollout.status != "promoted" or rollout.baseline_version is None:
        return False
    answering = [r["version"] for r in row.policy.get("routes", []) if r.get("weight", 0) > 0]
    return answering == [rollout.candidate_version] and rollout.baseline_version in row.policy.get("standby", [])


def rollback(ws: Workspace, endpoint: str, *, reason: str, evidence: dict[str, Any] | None = None) -> RolloutRecord:
    """All traffic back to the baseline (and the alias, if it moved); the candidate is dropped.

    Rolls back the rollout in progress or, when there is none, a promoted one whose baseline is still
    kept warm (blue-green's ``keep_warm_s``): instant, since every server has the baseline loaded.
    """
    with ws.store.write(ws.actor) as tx:
        row = lock_endpoint(tx.session, endpoint)
        rollout = _running(tx, row)
        if rollout is None:
            latest = _latest(tx, row)
            if not _kept_warm(row, latest):
                raise DeploymentError(f"endpoint {endpoint!r} has no rollout in progress and no promoted rollout "
                                      "whose baseline is still kept warm; deploy the old version instead")
            rollout = latest
        assert rollout is not None
        if rollout.baseline_version is None:
            raise DeploymentError(f"rollout {rollout.id} has no baseline to roll back to")
        set_policy(tx, row, make_policy(row.model_name, [(rollout.baseline_version, 1.0, "baseline")]),
                   reason=reason, rollout_id=rollout.id)
        if rollout.config.get("alias"):
            # Rolling back is always allowed: it restores a version that served before.
            _move_alias(tx, row.model_name, rollout.config["alias"], rollout.baseline_version,
                        f"rollout {rollout.id} rolled back: {reason}", check_approval=False)
        _finish(tx, row, rollout, "rolled_back", reason, evidence)
        return _record(rollout, row)


def advance(ws: Workspace, endpoint: str, *, evidence: dict[str, Any] | None = None) -> RolloutRecord:
    """Next canary step (the last step promotes); blue-green's step is the atomic switch."""
    with ws.store.write(ws.actor) as tx:
        row, rollout = _current(tx, endpoint)
        if rollout.status == "paused":
            raise DeploymentError(f"rollout {rollout.id} on {endpoint!r} is paused; resume it first")
        steps = rollout.config.get("steps", [1.0])
        if rollout.strategy == "canary" and rollout.step + 1 < len(steps) - 1:
            rollout.step += 1
            rollout.step_started_at = utcnow()
            if evidence:
                rollout.evidence = _appended(rollout.evidence, evidence)
            set_policy(tx, row, _policy_for("canary", row.model_name, rollout.baseline_version,
                                            rollout.candidate_version, rollout.config, rollout.step),
                       reason=f"canary step {rollout.step}", rollout_id=rollout.id)
            tx.audit("rollout.step", "rollout", rollout.id, after={"step": rollout.step, "weight": steps[rollout.step]})
            return _record(rollout, row)
    return promote(ws, endpoint, reason="final step passed", evidence=evidence)


def record_health_check(ws: Workspace, endpoint: str, version: int, health: dict[str, Any]) -> RolloutRecord | None:
    """A serving process's health check of a version it loaded, stored on the rollout whose candidate it is.

    Stored as an evidence entry ``{"kind": "health_check", ...}`` (no ``ts``: it is not an analysis).
    None when no rollout in progress has ``version`` as its candidate.
    """
    with ws.store.write(ws.actor) as tx:
        row = lock_endpoint(tx.session, endpoint)
        rollout = _running(tx, row)
        if rollout is None or rollout.candidate_version != int(version):
            return None
        entry = {"kind": "health_check", "at": utcnow().isoformat(), "version": int(version),
                 "server": f"{socket.gethostname()}:{os.getpid()}", **health}
        rollout.evidence = _appended(rollout.evidence, entry)
        return _record(rollout, row)


def release_standby(ws: Workspace, endpoint: str, *, now: datetime | None = None) -> RolloutRecord | None:
    """Drop the old version kept warm by the endpoint's promoted rollout once ``keep_warm_s`` has passed.

    An audited traffic change (the servers unload the version); None when nothing is due. Idempotent.
    """
    now = now or utcnow()
    with ws.store.write(ws.actor) as tx:
        row = lock_endpoint(tx.session, endpoint)
        rollout = _latest(tx, row)
        if rollout is None or rollout.status != "promoted" or rollout.ended_at is None:
            return None
        keep = rollout.config.get("keep_warm_s")
        if keep is None or any(e.get("kind") == "release" for e in rollout.evidence or []):
            return None
        if now < rollout.ended_at + timedelta(seconds=float(keep)):
            return None
        entry: dict[str, Any] = {"kind": "release", "at": now.isoformat(), "version": rollout.baseline_version,
                                 "keep_warm_s": float(keep)}
        if _kept_warm(row, rollout):
            policy = row.policy
            standby = [v for v in policy.get("standby", []) if v != rollout.baseline_version]
            routes = [(r["version"], r["weight"], r["role"]) for r in policy["routes"]]
            set_policy(tx, row, make_policy(row.model_name, routes, shadow=policy.get("shadow"), standby=standby,
                                            sticky=bool(policy.get("sticky")),
                                            shadow_fraction=float(policy.get("shadow_fraction", 1.0))),
                       reason=f"rollout {rollout.id}: kept warm {float(keep):g}s; version {rollout.baseline_version} "
                              "released", rollout_id=rollout.id)
            entry["released"] = True
        else:
            entry["released"] = False  # the policy moved on without it; nothing to drop
        rollout.evidence = _appended(rollout.evidence, entry)
        return _record(rollout, row)


def record_evidence(ws: Workspace, rollout_id: int, evidence: dict[str, Any], *,
                    collapse: bool = False) -> RolloutRecord:
    """Store one analysis (figures, tests, decision ``hold``) without changing traffic.

    ``collapse``: replace the last entry instead when both carry the same ``state`` (see :func:`_appended`).
    """
    with ws.store.write(ws.actor) as tx:
        rollout = tx.session.get(Rollout, rollout_id, with_for_update=True)
        if rollout is None:
            raise NotFoundError(f"rollout {rollout_id} does not exist")
        rollout.evidence = _appended(rollout.evidence, evidence, collapse=collapse)
        return _record(rollout, tx.session.get(Endpoint, rollout.endpoint_id))


def _set_status(ws: Workspace, endpoint: str, status: str, reason: str | None) -> RolloutRecord:
    with ws.store.write(ws.actor) as tx:
        row, rollout = _current(tx, endpoint)
        before = rollout.status
        rollout.status = status
        if status == "running":
            rollout.step_started_at = utcnow()  # the hold time restarts after a pause
        tx.audit(f"rollout.{'pause' if status == 'paused' else 'resume'}", "rollout", rollout.id,
                 before={"status": before}, after={"status": status}, reason=reason)
        return _record(rollout, row)


def pause(ws: Workspace, endpoint: str, *, reason: str | None = None) -> RolloutRecord:
    """Freeze the rollout where it is: traffic stays, the controller stops deciding."""
    return _set_status(ws, endpoint, "paused", reason)


def resume(ws: Workspace, endpoint: str, *, reason: str | None = None) -> RolloutRecord:
    return _set_status(ws, endpoint, "running", reason)


def get_rollout(ws: Workspace, endpoint: str) -> RolloutRecord | None:
    """The endpoint's latest rollout (running or finished), or None."""
    with ws.store.read() as s:
        row = s.execute(select(Endpoint).where(Endpoint.name == endpoint)).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"endpoint {endpoint!r} does not exist")
        rollout = s.execute(select(Rollout).where(Rollout.endpoint_id == row.id).order_by(Rollout.id.desc()).limit(1)).scalar_one_or_none()
        return _record(rollout, row) if rollout else None


def list_rollouts(ws: Workspace, *, status: str | None = None, latest_only: bool = False) -> list[RolloutRecord]:
    """Rollouts in id order; ``latest_only``: each endpoint's newest one (what the controller looks at every tick)."""
    with ws.store.read() as s:
        query = select(Rollout, Endpoint).join(Endpoint, Endpoint.id == Rollout.endpoint_id).order_by(Rollout.id)
        if status:
            query = query.where(Rollout.status == status)
        if latest_only:
            query = query.where(Rollout.id.in_(select(func.max(Rollout.id)).group_by(Rollout.endpoint_id)))
        return [_record(r, e) for r, e in s.execute(query).all()]
