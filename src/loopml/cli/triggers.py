"""``loopml triggers``: what starts a continuous-training run.

With ``LOOPML_SERVER_URL`` set every verb goes over HTTP (``fire --run`` waits for the server's scheduler to
run the request); ``add`` reads and checks the recipe here and sends it: the paths it names (data, contract)
must be readable where the server's scheduler runs. The printers take the records' ``to_dict()`` shape, which is also
what the server sends.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from loopml.cli._common import console, handle_errors, print_json, print_table, remote, workspace

app = typer.Typer(help="Triggers: schedule, new data, alert, manual.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every trigger, its kind, when it next fires and when it last did."""
    client = remote()
    if client is not None:
        with client:
            rows = client.list_triggers()
    else:
        from loopml.trigger import list_triggers

        rows = [t.to_dict() for t in list_triggers(workspace())]
    if json_out:
        print_json(rows)
        return
    print_table("triggers", ["name", "kind", "config", "enabled", "next due", "last fired"],
                [(t["name"], t["kind"], t["config"], t["enabled"], _when(t["next_due_at"]), _when(t["last_fired_at"]))
                 for t in rows])


def _when(value: datetime | str | None) -> str | None:
    """A record's time (a datetime) or its JSON (ISO text), to the second."""
    if value is None:
        return None
    return f"{value if isinstance(value, datetime) else datetime.fromisoformat(value):%Y-%m-%d %H:%M:%S}"


@app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(...),
    recipe: Path = typer.Option(..., "--recipe", help="The recipe YAML the trigger runs."),
    kind: str = typer.Option("manual", "--kind", help="schedule | new_data | alert | manual"),
    cron: str = typer.Option(None, "--cron", help="schedule: a 5-field cron expression (UTC)."),
    dataset: str = typer.Option(None, "--dataset", help="new_data: the dataset to watch."),
    min_new_rows: int = typer.Option(None, "--min-new-rows", help="new_data: fire only above this many new rows."),
    on_drift: bool = typer.Option(False, "--on-drift", help="new_data: fire only when the distribution moved."),
    endpoint: str = typer.Option(None, "--endpoint", help="alert: only alerts of this endpoint."),
    rule: list[str] = typer.Option([], "--rule", help="alert: only these alert rules."),
    debounce_s: float = typer.Option(None, "--debounce", help="alert: at least this many seconds between retrainings."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Add a trigger that runs RECIPE when it fires."""
    from loopml.recipes import load_spec

    spec = load_spec(recipe)
    options = {"cron": cron, "dataset": dataset, "min_new_rows": min_new_rows, "on_drift": on_drift or None,
               "endpoint": endpoint, "rules": rule or None, "debounce_s": debounce_s}
    fields: dict[str, Any] = {"recipe": spec.model_dump(by_alias=True, mode="json"),
                              "recipe_path": str(recipe.resolve()),
                              "config": {k: v for k, v in options.items() if v is not None}}
    client = remote()
    if client is not None:
        with client:
            record = client.add_trigger(name, kind, **fields)
    else:
        from loopml.trigger import add_trigger

        record = add_trigger(workspace(), name, kind, **fields).to_dict()
    if json_out:
        print_json(record)
    else:
        due = f", next at {_when(record['next_due_at'])[:16]} UTC" if record["next_due_at"] else ""
        console.print(f"trigger [bold]{record['name']}[/bold] ({record['kind']}) added{due}")


@app.command("fire")
@handle_errors
def fire(
    name: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason"),
    run_now: bool = typer.Option(False, "--run", help="Run it now and wait: here, or with a server, on its scheduler."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Fire a trigger now (a person's decision, recorded with the reason)."""
    from loopml.trigger import fire_trigger

    client = remote()
    if client is not None:  # the server fires it as the token's user; its scheduler runs it
        with client:
            fired = client.fire_trigger(name, reason=reason)
            if run_now:
                from loopml.cli._remote import wait_for_run

                fired = wait_for_run(client, fired, show=not json_out)
        if json_out:
            print_json(fired)
        else:
            console.print(f"run request {fired['id']}: {fired['status']}"
                          + (f", run {fired['run_id']}" if fired.get("run_id") else ""))
        return
    ws = workspace()
    request = fire_trigger(ws, name, reason=reason)
    if run_now:
        from loopml.scheduler import execute_next_request

        request = execute_next_request(ws, f"cli:{ws.actor}") or request
        if request.status == "failed":  # as with a server: a failed run is a failed command
            from loopml.kernel.exceptions import PipelineError

            raise PipelineError(f"run request {request.id} failed: {request.error}")
    if json_out:
        print_json(request)
    else:
        console.print(f"run request {request.id}: {request.status}" + (f", run {request.run_id}" if request.run_id else ""))


@app.command("requests")
@handle_errors
def requests_(status: str = typer.Option(None, "--status"), json_out: bool = typer.Option(False, "--json")) -> None:
    """Run requests written by triggers, and the runs they started."""
    client = remote()
    if client is not None:
        with client:
            rows = client.list_run_requests(status=status)
    else:
        from loopml.trigger import list_run_requests

        rows = [r.to_dict() for r in list_run_requests(workspace(), status=status)]
    if json_out:
        print_json(rows)
        return
    print_table("run requests", ["id", "status", "why", "run", "created", "error"],
                [(r["id"], r["status"], r["context"].get("type"), r["run_id"], _when(r["created_at"]), r["error"])
                 for r in rows])


def _toggle(name: str, enabled: bool) -> None:
    client = remote()
    if client is not None:
        with client:
            record = client.set_trigger_enabled(name, enabled)
    else:
        from loopml.trigger import set_trigger_enabled

        record = set_trigger_enabled(workspace(), name, enabled).to_dict()
    console.print(f"trigger {record['name']}: {'enabled' if record['enabled'] else 'disabled'}")


@app.command("enable")
@handle_errors
def enable(name: str) -> None:
    """Enable a trigger."""
    _toggle(name, True)


@app.command("disable")
@handle_errors
def disable(name: str) -> None:
    """Disable a trigger (it keeps its state)."""
    _toggle(name, False)
