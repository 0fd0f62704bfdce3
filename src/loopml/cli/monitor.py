"""``loopml monitor define | run | list | report``: a thin face over loopml.monitor.

With ``LOOPML_SERVER_URL`` set every verb goes over HTTP (``define`` reads the spec file here and sends it);
the printers take the records' ``to_dict()`` shape, which is also what the server sends.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._common import console, handle_errors, print_json, remote, workspace

app = typer.Typer(help="Monitors: drift, quality, performance and service health of an endpoint.",
                  no_args_is_help=True)

_STYLE = {"ok": "green", "fail": "red", "skipped": "dim", "drift": "yellow", "degraded": "red"}


def _styled(status: str) -> str:
    style = _STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _figures(check: dict[str, Any]) -> str:
    m = check.get("metrics") or {}
    name = check["name"]
    keys = {
        "data_drift": ("n_drifted", "n_features", "drift_share"),
        "prediction_drift": ("method", "effect", "p_value"),
        "schema": ("n_missing", "n_new", "n_retyped"),
        "quality": ("n_failing", "max_missing_rate"),
        "outliers": ("row_share", "expected_row_share"),
        "performance": ("metric", "value", "baseline", "drop", "n_labelled"),
        "segments": ("n_segments", "n_failing"),
        "health": ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "throughput_per_min"),
    }.get(name, tuple(m)[:4])
    out = []
    for k in keys:
        v = m.get(k)
        if v is None:
            continue
        out.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(out)


def _finding(check: dict[str, Any]) -> str:
    if check.get("reason"):
        return str(check["reason"])
    d = check.get("details") or {}
    for key in ("drifted_columns", "failing_columns", "failing", "breaches", "columns_over"):
        if d.get(key):
            return ", ".join(map(str, d[key]))
    if check["name"] == "schema" and (d.get("missing") or d.get("new") or d.get("retyped")):
        return (f"missing: {', '.join(d.get('missing', [])) or '-'}; new: {', '.join(d.get('new', [])) or '-'}; "
                f"retyped: {', '.join(r['column'] for r in d.get('retyped', [])) or '-'}")
    return ""


def _when(value: datetime | str | None) -> str:
    """A record's time (a datetime) or its JSON (ISO text), to the minute."""
    if value is None:
        return "-"
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")


def _print_report(rec: dict[str, Any]) -> None:
    report = rec["report"] or {}
    win = report.get("window", {})
    console.print(f"report [bold]{rec['id']}[/bold] of [bold]{rec['endpoint']}[/bold] (monitor {report.get('monitor')}): "
                  f"{_styled(rec['status'])} · {rec['n_rows']} rows · window {win.get('start')} → {win.get('end')} · "
                  f"reference {report.get('reference', {}).get('model') or report.get('reference', {}).get('source')}")
    table = Table(show_lines=False)
    for col in ("check", "status", "figures", "finding"):
        table.add_column(col, overflow="fold")
    for check in report.get("checks", {}).values():
        table.add_row(check["name"], _styled(check["status"]), _figures(check), _finding(check))
    console.print(table)
    for a in report.get("alerts", []):
        if a["action"] in ("raised", "folded"):
            console.print(f"[red]ALERT[/red] {a['action']} #{a.get('alert_id')} "
                          + escape(f"[{a.get('severity')}] {a.get('message')}"),
                          highlight=False, soft_wrap=True)
        elif a["action"] == "resolved":
            console.print(f"[green]resolved[/green] {a['dedup_key']}", highlight=False)


@app.command("define")
@handle_errors
def define_cmd(
    file: str = typer.Argument(..., help="The monitor spec (YAML)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create or replace a monitor from a YAML spec."""
    from loopml.monitor import define_monitor, load_spec

    spec = load_spec(Path(file))
    client = remote()
    if client is not None:
        with client:
            rec = client.define_monitor(spec)
    else:
        rec = define_monitor(workspace(), spec).to_dict()
    if json_out:
        print_json(rec)
        return
    console.print(f"monitor [bold]{rec['name']}[/bold] on endpoint {rec['endpoint']} defined; "
                  f"schedule {rec['schedule'] or 'none (run it with `loopml monitor run`)'}; "
                  f"next run {rec['next_due_at'] or '-'}")


@app.command("run")
@handle_errors
def run_cmd(
    target: str = typer.Argument(..., help="A monitor name or an endpoint (its default monitor if none is defined)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Run a monitor now. Drift is a finding, not an error: the exit code is 0 either way."""
    client = remote()
    with console.status(f"monitoring {target} ..."):
        if client is not None:
            with client:
                rec = client.run_monitor(target)
        else:
            from loopml.monitor import run_monitor

            rec = run_monitor(workspace(), target).to_dict()
    if json_out:
        print_json(rec)
        return
    _print_report(rec)


@app.command("list")
@handle_errors
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List the defined monitors with their schedule and latest report."""
    client = remote()
    if client is not None:
        with client:
            monitors = client.list_monitors()
            latest = {m["name"]: next(iter(client.list_reports(m["endpoint"], limit=1)), None) for m in monitors}
    else:
        from loopml.monitor import list_monitors, list_reports

        ws = workspace()
        monitors = [m.to_dict() for m in list_monitors(ws)]
        latest = {m["name"]: next((r.to_dict() for r in list_reports(ws, m["endpoint"], limit=1)), None)
                  for m in monitors}
    if json_out:
        print_json([{**m, "latest_report": None if latest[m["name"]] is None else
                     {"id": latest[m["name"]]["id"], "status": latest[m["name"]]["status"]}} for m in monitors])
        return
    if not monitors:
        console.print("no monitors defined; `loopml monitor run ENDPOINT` runs the default one")
        return
    table = Table(title=f"monitors ({len(monitors)})")
    for col in ("name", "endpoint", "schedule", "checks", "last run", "next due", "latest"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "schedule"))
    for m in monitors:
        rep = latest[m["name"]]
        table.add_row(m["name"], m["endpoint"], m["schedule"] or "-", ", ".join(m["spec"].get("checks", {})),
                      _when(m["last_run_at"]), _when(m["next_due_at"]),
                      "-" if rep is None else f"#{rep['id']} {_styled(rep['status'])}")
    console.print(table)


@app.command("report")
@handle_errors
def report_cmd(
    target: str = typer.Argument(..., help="A report id, or an endpoint (its latest report)."),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the HTML view to this file."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show a report (a table, JSON, or the HTML view written to a file)."""
    from loopml.kernel.exceptions import NotFoundError

    client = remote()
    if client is not None:
        with client:
            found = [{"id": int(target)}] if target.isdigit() else client.list_reports(target, limit=1)
            rec = client.get_report(found[0]["id"]) if found else None
            html = client.report_html(rec["id"]) if rec is not None and output is not None else None
    else:
        from loopml.monitor import get_report, list_reports, report_html

        ws = workspace()
        reps = [get_report(ws, int(target))] if target.isdigit() else list_reports(ws, target, limit=1)
        rec = reps[0].to_dict() if reps else None
        html = report_html(ws, rec["id"]) if rec is not None and output is not None else None
    if rec is None:
        raise NotFoundError(f"endpoint {target!r} has no monitor reports yet; run `loopml monitor run {target}`")
    if html is not None:
        Path(str(output)).write_text(html, encoding="utf-8")
    if json_out:
        print_json(rec)
        return
    _print_report(rec)
    if output is not None:
        console.print(f"HTML report written to {output}")
