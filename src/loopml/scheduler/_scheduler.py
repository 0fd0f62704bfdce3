"""The scheduler: runs due monitors, fires due triggers, executes run requests.

Only the holder of the ``scheduler`` lease acts; a second scheduler waits as
a hot standby and takes over when the lease expires. Trigger firing is
exactly-once per slot whatever the number of schedulers (see
``loopml.trigger``), so a restart neither double-fires nor loses a due job.
A monitor that raises is logged and skipped: the others still run.
Training runs execute on their own worker thread so a long run never
delays monitoring, and notifications go out on a third.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopml.kernel.exceptions import LoopmlError
from loopml.kernel.types import utcnow
from loopml.metadata.leases import acquire_lease, release_lease
from loopml.monitor.alerts import NotificationDispatcher
from loopml.trigger import (
    RunRequestRecord,
    check_triggers,
    claim_next_request,
    finish_request,
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

    def to_dict(self) -> dict[str, Any]:
        return {"leader": self.leader, "monitors_run": self.monitors_run, "monitor_errors": self.monitor_errors,
                "fired": [r.to_dict() for r in self.fired],
                "rollout_decisions": [d.to_dict() for d in self.rollout_decisions]}


def execute_next_request(ws: Workspace, worker: str) -> RunRequestRecord | None:
    """Claim one pending run request and run its recipe with the trigger's context."""
    claimed = claim_next_request(ws, worker)
    if claimed is None:
        return None
    request, recipe, recipe_path = claimed
    from loopml.recipes import run_recipe

    try:
        spec: Any = recipe or recipe_path
        result = run_recipe(ws, spec, trigger={**request.context, "run_request_id": request.id})
    except LoopmlError as exc:
        run_id = getattr(exc, "run_id", None)
        return finish_request(ws, request.id, run_id=run_id, error=str(exc))
    return finish_request(ws, request.id, run_id=result.run_id)


class Scheduler:
    """One loop over monitors, triggers and run requests, leader-elected by a lease."""

    def __init__(
        self, ws: Workspace, *, holder: str | None = None, tick_s: float = 5.0,
        lease_ttl_s: float | None = None, execute_runs: bool = True,
    ) -> None:
        self.ws = ws
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.tick_s = tick_s
        self.lease_ttl_s = lease_ttl_s or max(3 * tick_s, 15.0)
        self.execute_runs = execute_runs
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
            try:
                run_monitor(self.ws, name, now=now)
                report.monitors_run.append(name)
            except Exception as exc:
                log.exception("monitor %s failed", name)
                report.monitor_errors[name] = f"{type(exc).__name__}: {exc}"
        from loopml.rollout import controller_tick

        try:  # the controller keeps its state on the rollout rows: a restart resumes where it was
            report.rollout_decisions = controller_tick(self.ws, now=now)
        except Exception:
            log.exception("rollout controller failed")
        report.fired = check_triggers(self.ws, now=now)
        if report.fired:
            self._work.set()
        return report

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            self._work.wait(self.tick_s)
            self._work.clear()
            while not self._stop.is_set():
                try:
                    done = execute_next_request(self.ws, self.holder)
                except LoopmlError:
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
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except LoopmlError:
                    log.exception("scheduler tick failed; retrying")
                self._stop.wait(self.tick_s)
        finally:
            dispatcher.stop()
            self._work.set()
            if worker:
                worker.join(timeout=5)
            release_lease(self.ws.store, LEASE, self.holder)

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
