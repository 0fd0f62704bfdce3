"""``loopml runs``: list, show and compare tracked runs (a thin face over loopml.tracking).

With ``LOOPML_SERVER_URL`` set every verb reads over HTTP; the printers take the runs' ``to_dict()``
shape, which is also what the server sends.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from loopml.cli._common import console, handle_errors, print_json, print_table, remote, workspace

app = typer.Typer(help="Experiment tracking: list, show and compare runs.", no_args_is_help=True)

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "cached": "cyan", "skipped": "dim"}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _time(value: datetime | str | None) -> datetime | None:
    """A time from a record (a datetime) or its JSON (ISO text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@app.command("list")
@handle_errors
def list_cmd(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this experiment."),
    kind: str | None = typer.Option(None, "--kind", help="manual, pipeline, step, train, trial ..."),
    status: str | None = typer.Option(None, "--status", help="running, succeeded, failed, cached, skipped."),
    filter_: str | None = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.acc > 0.5 and params.model = 'hgb'\"."
    ),
    order_by: list[str] | None = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many runs."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List runs, newest first (or by --order-by), with their latest metrics."""
    query: dict[str, Any] = {"experiment": experiment, "kind": kind, "status": status, "filter": filter_,
                             "order_by": order_by or None, "limit": limit}
    client = remote()
    if client is not None:
        with client:
            runs = client.list_runs(**query)
    else:
        from loopml.tracking import list_runs

        runs = [r.to_dict() for r in list_runs(workspace(), **query)]
    if json_out:
        print_json(runs)
        return
    _print_runs(runs, show_exp=experiment is None)


def _print_runs(runs: list[dict[str, Any]], *, show_exp: bool) -> None:
    if not runs:
        console.print("no runs match")
        return
    metric_keys = sorted({k for r in runs for k in r["metrics"]})[:5]
    show_exp = show_exp and len({r["experiment"] for r in runs}) > 1
    table = Table(title=f"runs ({len(runs)})")
    cols = ["id", "name", *(["experiment"] if show_exp else []), "kind", "status", "started", "duration"]
    for col in (*cols, *metric_keys):
        # Ids and names are what users copy: never cut them; let the rest fold.
        table.add_column(col, no_wrap=col in ("id", "name", "status"), overflow="fold")
    for r in runs:
        table.add_row(
            r["id"], r["name"], *([r["experiment"]] if show_exp else []), r["kind"], _status(r["status"]),
            f"{_time(r['started_at']):%m-%d %H:%M:%S}", _duration(r["duration_s"]),
            *[_fmt(r["metrics"].get(k)) for k in metric_keys],
        )
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix works)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """One run: attributes, params, latest metrics, tags, artifacts and child runs."""
    client = remote()
    if client is not None:
        with client:
            run = client.get_run(run_id)
            children = client.list_runs(parent_id=run["id"], limit=None, order_by=["started_at"])
    else:
        from loopml.tracking import get_run, list_runs

        ws = workspace()
        run = get_run(ws, run_id).to_dict()
        children = [c.to_dict() for c in list_runs(ws, parent_id=run["id"], limit=None, order_by=["started_at"])]
    if json_out:
        print_json({**run, "children": [{"id": c["id"], "name": c["name"], "status": c["status"]} for c in children]})
        return
    _print_run(run, children)


def _print_run(run: dict[str, Any], children: list[dict[str, Any]]) -> None:
    ended, git = _time(run["ended_at"]), run["git"]
    console.print(f"[bold]run {run['id']}[/bold]  {run['name']}  {_status(run['status'])}")
    attrs = [
        ("experiment", run["experiment"]), ("kind", run["kind"]), ("parent", run["parent_id"]),
        ("started", _time(run["started_at"]).isoformat(timespec="seconds")),  # type: ignore[union-attr]
        ("ended", ended.isoformat(timespec="seconds") if ended else None),
        ("duration", _duration(run["duration_s"])), ("created by", run["created_by"]),
        ("git", f"{git['commit']}{' (dirty)' if git['dirty'] else ''}" if git["commit"] else None),
        ("cache key", run["cache_key"]), ("trigger", run["trigger"]), ("error", run["error"]),
    ]
    print_table(None, ["attribute", "value"], [(k, v) for k, v in attrs if v is not None])
    if run["params"]:
        print_table("params", ["key", "value"], sorted(run["params"].items()))
    if run["metrics"]:
        print_table(
            "metrics (latest)", ["key", "value", "step"],
            [(k, _fmt(v), run["metric_steps"].get(k)) for k, v in run["metrics"].items()],
        )
    if run["tags"]:
        print_table("tags", ["key", "value"], sorted(run["tags"].items()))
    if run["artifacts"]:
        print_table(
            "artifacts", ["name", "digest", "size", "media type"],
            [(a["name"], a["digest"][:12], a["size"], a["media_type"]) for a in run["artifacts"]],
        )
    if children:
        print_table(
            "children", ["id", "name", "kind", "status"],
            [(c["id"], c["name"], c["kind"], _status(c["status"])) for c in children],
        )


@app.command("compare")
@handle_errors
def compare_cmd(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Params, metrics and tags of runs side by side; differing values are highlighted."""
    client = remote()
    if client is not None:
        with client:
            result = client.compare_runs(run_ids)
    else:
        from loopml.tracking import compare_runs

        result = compare_runs(workspace(), run_ids)
    if json_out:
        print_json(result)
        return
    runs = result["runs"]
    table = Table(title="compare", show_lines=False)
    table.add_column("")
    for r in runs:
        table.add_column(f"{r['name']}\n{r['id'][-8:]}")
    table.add_row("status", *[_status(r["status"]) for r in runs])
    for section in ("params", "metrics", "tags"):
        rows = result[section]
        if not rows:
            continue
        table.add_section()
        for key, cell in rows.items():
            label = f"{section}.{key}"
            values = [_fmt(v) for v in cell["values"]]
            if cell["differs"]:
                table.add_row(f"[bold yellow]{label}[/bold yellow]", *[f"[yellow]{v}[/yellow]" for v in values])
            else:
                table.add_row(label, *values)
    console.print(table)
    n_diff = sum(c["differs"] for s in ("params", "metrics", "tags") for c in result[s].values())
    console.print(f"{n_diff} value(s) differ")
