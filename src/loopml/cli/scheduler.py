"""``loopml scheduler``: runs monitors, triggers and run requests."""

from __future__ import annotations

import signal

import typer

from loopml.cli._common import console, handle_errors, print_json, workspace


def register(app: typer.Typer) -> None:
    @app.command("scheduler")
    @handle_errors
    def scheduler(
        once: bool = typer.Option(False, "--once", help="One tick (and the runs it fires), then exit."),
        tick_s: float = typer.Option(5.0, "--tick", help="Seconds between ticks."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run due monitors, fire due triggers and execute run requests, until stopped."""
        from loopml.scheduler import Scheduler

        ws = workspace()
        sched = Scheduler(ws, tick_s=tick_s)
        if once:
            report = sched.run_once()
            if json_out:
                print_json(report.to_dict())
            else:
                state = "leader" if report.leader else "standby (another scheduler holds the lease)"
                console.print(f"scheduler tick: {state}; monitors run: {len(report.monitors_run)}, "
                              f"errors: {len(report.monitor_errors)}, triggers fired: {len(report.fired)}, "
                              f"runs: {len(report.executed)}, notifications sent: {report.notified}")
            return
        signal.signal(signal.SIGTERM, lambda *_: sched.stop())
        console.print(f"scheduler {sched.holder} running (tick {tick_s}s); Ctrl-C to stop")
        try:
            sched.run_forever()
        except KeyboardInterrupt:
            sched.stop()
