"""``loopml audit``: read, verify and export the hash-chained audit log.

With ``LOOPML_SERVER_URL`` and ``LOOPML_TOKEN`` set, each verb asks the
server's ``/audit`` routes (the token's user needs ``audit.read``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from loopml.cli._common import (
    JsonOpt,
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    remote,
    workspace,
)

app = typer.Typer(help="The audit log: who did what to which object, when.", no_args_is_help=True)


@app.command("log")
@handle_errors
def log(
    actor: str = typer.Option(None, "--actor", help="Only this actor."),
    action: str = typer.Option(None, "--action", help="An action (model.alias) or a noun (model)."),
    obj: str = typer.Option(None, "--object", help="TYPE or TYPE:ID (ID may end in *), e.g. model_version:churn/*."),
    since: str = typer.Option(None, "--since", help="ISO time or an age: 30m, 2h, 7d."),
    until: str = typer.Option(None, "--until", help="ISO time or an age."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many events, newest first."),
    json_out: bool = JsonOpt,
) -> None:
    """Audit events, newest first."""
    from loopml.metadata.audit import audit_log

    client = remote()
    if client is not None:
        with client:
            events = client.audit_log(actor=actor, action=action, object=obj, since=since, until=until, limit=limit)
    else:
        events = [e.to_dict() for e in audit_log(workspace(), actor=actor, action=action, object=obj, since=since,
                                                 until=until, limit=limit)]
    if json_out:
        print_json(events)
        return
    print_table(
        "Audit log",
        ["seq", "time", "actor", "action", "object", "change", "reason"],
        [
            (e["seq"], e["ts"][:19].replace("T", " "), e["actor"], e["action"], e["object"],
             _change(e["before"], e["after"]), e["reason"])
            for e in events
        ],
    )


def _change(before: object, after: object) -> str:
    if before is None and after is None:
        return ""
    if before is None:
        return f"+ {_brief(after)}"
    if after is None:
        return f"- {_brief(before)}"
    return f"{_brief(before)} → {_brief(after)}"


def _brief(value: object, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("verify")
@handle_errors
def verify(json_out: bool = JsonOpt) -> None:
    """Check the hash chain; exit 1 naming each broken event if it was tampered with."""
    from loopml.metadata.audit import verify_audit

    client = remote()
    if client is not None:
        with client:
            problems = client.verify_audit()
    else:
        problems = [p.to_dict() for p in verify_audit(workspace())]
    if json_out:
        print_json({"ok": not problems, "problems": problems})
    elif not problems:
        console.print("[green]audit chain intact[/green]")
    else:
        for p in problems:
            err_console.print(f"[red]broken:[/red] event {p['seq']} ({p['kind']}): {escape(p['message'])}",
                              highlight=False)
    if problems:
        first = problems[0]
        if not json_out:
            err_console.print(
                f"[red]error:[/red] audit chain broken at event {first['seq']}: {first['message']}",
                highlight=False, soft_wrap=True,
            )
        raise typer.Exit(1)


@app.command("export")
@handle_errors
def export(
    path: Path = typer.Argument(..., help="Where to write the log (JSON Lines, oldest first)."),
    json_out: bool = JsonOpt,
) -> None:
    """Write the whole audit log to PATH as JSON Lines."""
    from loopml.metadata.audit import export_audit

    client = remote()
    if client is not None:
        with client:
            count = client.export_audit(path)
    else:
        count = export_audit(workspace(), path)
    if json_out:
        print_json({"path": str(path), "events": count})
    else:
        console.print(f"Wrote {count} audit events to {path}")
