"""The scheduler: runs due monitors, fires due triggers, executes run requests.

Only the holder of the ``scheduler`` lease acts; a second scheduler waits as
a hot standby and takes over when the lease expires. Trigger firing is
exactly-once per slot whatever the number of schedulers (see
``loopml.trigger``), so a restart neither double-fires nor loses a due job.
A monitor that raises is logged and skipped: the others still run.
Training runs execute on their own worker thread so a long run never
delays monitoring, and notifications go out on a third. Running rollouts
are analysed on a fourth, every ``rollout_tick_s`` (1 s): a breach is rolled
back within seconds even while a long monitor pass runs, and with no
rollout running each look is one indexed read. A runner renews
the lease of the request it executes; a request left ``running`` by a
runner that died is taken over once that lease expires, and a recipe that
raises anything marks its request failed instead of stopping the runner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopml.kernel.exceptions import LoopmlError, ValidationError
from loopml.kernel.types import jsonable, utcnow
from loopml.metadata.leases import acquire_lease, lease_holder, release_lease
from loopml.monitor.alerts import NotificationDispatcher, deliver_pending
from loopml.trigger import (
    REQUEST_LEASE_TTL_S,
    RunRequestRecord,
    check_triggers,
    claim_next_request,
    finish_request,
    record_progress,
    request_lease,
)
from loopml.workspace import Workspace

__all__ = ["Scheduler", "TickReport", "execute_next_request"]

log = logging.getLogger("loopml.scheduler")
LEASE = "scheduler"


@dataclass
class TickReport:
    leader: bool
    monitors_run: list[str] = field(default_factory=list)
    monitor_errors: dict[str, str] = field(default_factory=dict)
    fired: list[RunRequestRecord] = field(default_factory=list)
    #: what the rollout controller decided this tick (``loopml.rollout.Decision``)
    rollout_decisions: list[Any] = field(default_factory=list)
    #: run requests executed after the tick (``run_once`` only)
    executed: list[RunRequestRecord] = field(default_factory=list)
    #: notifications sent after the tick (``run_once`` only)
    notified: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"leader": self.leader, "monitors_run": self.monitors_run, "monitor_errors": self.monitor_errors,
                "fired": [r.to_dict() for r in self.fired],
                "rollout_decisions": [d.to_dict() for d in self.rollout_decisions],
                "executed": [r.to_dict() for r in self.executed], "notified": self.notified}


class _LeaseKeeper:
    """Renews a run request's lease every third of its TTL while the run goes on (a daemon thread)."""

    def __init__(self, ws: Workspace, name: str, holder: str, ttl_s: float) -> None:
        self.ws, self.name, self.holder, self.ttl_s = ws, name, holder, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"loopml-lease-{name}", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if acquire_lease(self.ws.store, self.name, self.holder, self.ttl_s):
                    continue
                # False is also a lost write race (a busy SQLite): only another holder means stop.
                other = lease_holder(self.ws.store, self.name)
                if other not in (None, self.holder):
                    log.warning("lease %s was taken over by %s", self.name, other)
                    return
            except Exception:  # a database hiccup: try again next period, the TTL leaves room
                log.exception("could not renew lease %s", self.name)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _ProgressToRequest:
    """A run's step events, kept on its run request for whoever follows it (``loopml run`` against a server)."""

    def __init__(self, ws: Workspace, request_id: int) -> None:
        self.ws, self.request_id = ws, request_id

    def __enter__(self) -> _ProgressToRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _record(self, event: tuple[str, str, float | None]) -> None:
        try:
            record_progress(self.ws, self.request_id, event)
        except Exception:  # progress is for people watching: it never fails the run
            log.exception("run request %s: could not record step progress", self.request_id)

    def step_started(self, name: str) -> None:
        self._record((name, "running", None))

    def step_finished(self, name: str, status: str, seconds: float | None) -> None:
        self._record((name, status, seconds))


def execute_next_request(ws: Workspace, worker: str, *,
                         lease_ttl_s: float = REQUEST_LEASE_TTL_S) -> RunRequestRecord | None:
    """Claim one run request (pending, or abandoned by a dead runner) and run its recipe with the trigger's context.

    The request's lease is renewed while the recipe runs. Whatever the recipe
    raises, the request ends ``failed`` with the error (never stuck ``running``).
    """
    claimed = claim_next_request(ws, worker, lease_ttl_s=lease_ttl_s)
    if claimed is None:
        return None
    request, recipe, recipe_path = claimed
    if not recipe and not recipe_path:
        return finish_request(ws, request.id, run_id=None,
                              error=f"run request {request.id} has no recipe to run: its trigger was removed "
                                    "or names neither a recipe nor a recipe file")
    from loopml.recipes import run_recipe

    # A submitted recipe runs as the person who submitted it (their name on what it registers).
    submitter = request.context.get("by") if request.context.get("type") == "submitted" else None
    run_ws = ws.as_actor(submitter) if submitter else ws
    try:
        with _LeaseKeeper(ws, request_lease(request.id), worker, lease_ttl_s):
            spec: Any = recipe or recipe_path
            result = run_recipe(run_ws, spec, trigger={**request.context, "run_request_id": request.id},
                                progress=_ProgressToRequest(ws, request.id))
    except LoopmlError as exc:
        run_id = getattr(exc, "run_id", None)
        return finish_request(ws, request.id, run_id=run_id, error=str(exc))
    except Exception as exc:  # a bug in a step or a foreign error: the request fails, the runner goes on
        log.exception("run request %s failed", request.id)
        return finish_request(ws, request.id, run_id=getattr(exc, "run_id", None),
                              error=f"{type(exc).__name__}: {exc}")
    try:
        payload = jsonable(result, "result")
    except ValidationError:  # an output that is not JSON must not leave the request running
        log.exception("run request %s: its result is not JSON; kept without it", request.id)
        payload = None
    return finish_request(ws, request.id, run_id=result.run_id, result=payload)


class Scheduler:
    """One loop over monitors, triggers and run requests, leader-elected by a lease."""

    def __init__(
        self, ws: Workspace, *, holder: str | None = None, tick_s: float = 5.0,
        lease_ttl_s: float | None = None, execute_runs: bool = True, rollout_tick_s: float | None = 1.0,
    ) -> None:
        """``rollout_tick_s``: how often :meth:`run_forever` looks at running rollouts on their own thread
        (None or 0: only on the main tick, every ``tick_s``)."""
        self.ws = ws
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.tick_s = tick_s
        self.lease_ttl_s = lease_ttl_s or max(3 * tick_s, 15.0)
        self.execute_runs = execute_runs
        self.rollout_tick_s = float(rollout_tick_s or 0.0)
        if self.rollout_tick_s < 0:
            raise ValidationError(f"rollout_tick_s must be >= 0 seconds, got {rollout_tick_s!r}",
                                  field="rollout_tick_s", rule="min")
        #: True while run_forever's rollout thread analyses running rollouts (the main tick then only releases)
        self._rollout_thread = False
        self._stop = threading.Event()
        self._work = threading.Event()

    def tick(self, *, now: datetime | None = None) -> TickReport:
        """One pass: monitors, then rollouts, then triggers. Safe to call from a cron job or a test."""
        now = now or utcnow()
        if not acquire_lease(self.ws.store, LEASE, self.holder, self.lease_ttl_s, now=now):
            return TickReport(leader=False)
        report = TickReport(leader=True)
        from loopml.monitor import due_monitors, run_monitor

        for name in due_monitors(self.ws, now):
            # Renew before each monitor: a long pass must not let the lease lapse to a standby mid-way.
            if not acquire_lease(self.ws.store, LEASE, self.holder, self.lease_ttl_s, now=max(now, utcnow())):
                log.warning("scheduler %s lost its lease during the monitor pass", self.holder)
                return report
            try:
                run_monitor(self.ws, name, now=now)
                report.monitors_run.append(name)
            except Exception as exc:
                log.exception("monitor %s failed", name)
                report.monitor_errors[name] = f"{type(exc).__name__}: {exc}"
        from loopml.rollout import controller_tick

        try:  # the controller keeps its state on the rollout rows: a restart resumes where it was
            report.rollout_decisions = controller_tick(self.ws, now=now, analyse=not self._rollout_thread)
        except Exception:
            log.exception("rollout controller failed")
        report.fired = check_triggers(self.ws, now=now)
        if report.fired:
            self._work.set()
        return report

    def rollout_tick(self, *, now: datetime | None = None) -> list[Any]:
        """Analyse the running rollouts that are due, if this scheduler leads; their decisions.

        With none running this is one indexed read. The lease is only checked here, never renewed:
        if the main loop stalls, its lease lapses and a standby takes over everything, rollouts too.
        """
        from loopml.deploy import list_rollouts
        from loopml.rollout import analyze_running

        running = list_rollouts(self.ws, status="running")
        if not running or lease_holder(self.ws.store, LEASE, now=now) != self.holder:
            return []
        return analyze_running(self.ws, now=now, rollouts=running)

    def _run_rollouts(self) -> None:
        while not self._stop.wait(self.rollout_tick_s):
            try:
                self.rollout_tick()
            except Exception:  # a database hiccup: look again next second
                log.exception("rollout controller tick failed; retrying")

    def run_once(self, *, now: datetime | None = None) -> TickReport:
        """One tick, then every queued run request, then one delivery pass of the outbox (``--once``, cron)."""
        report = self.tick(now=now)
        if report.leader:
            while (request := execute_next_request(self.ws, self.holder)) is not None:
                report.executed.append(request)
        report.notified = deliver_pending(self.ws).sent
        return report

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            self._work.wait(self.tick_s)
            self._work.clear()
            while not self._stop.is_set():
                try:
                    done = execute_next_request(self.ws, self.holder)
                except Exception:  # the runner thread must survive, or no request would ever run again
                    log.exception("run request failed to start")
                    break
                if done is None:
                    break

    def run_forever(self) -> None:
        """Tick until :meth:`stop`; releases the lease on the way out."""
        dispatcher = NotificationDispatcher(self.ws).start()
        worker = threading.Thread(target=self._run_worker, name="loopml-runs", daemon=True) if self.execute_runs else None
        if worker:
            worker.start()
        rollouts = None
        if self.rollout_tick_s > 0:
            self._rollout_thread = True
            rollouts = threading.Thread(target=self._run_rollouts, name="loopml-rollouts", daemon=True)
            rollouts.start()
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:  # one bad tick (a database hiccup) must not end the scheduler
                    log.exception("scheduler tick failed; retrying")
                self._stop.wait(self.tick_s)
        finally:
            dispatcher.stop()
            self._work.set()
            if worker:
                worker.join(timeout=5)
            if rollouts:
                rollouts.join(timeout=5)
                self._rollout_thread = False
            release_lease(self.ws.store, LEASE, self.holder)

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
