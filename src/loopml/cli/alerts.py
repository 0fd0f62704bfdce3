"""``loopml alerts list | ack``: the incidents monitors raised (a thin face over loopml.monitor.alerts).

With ``LOOPML_SERVER_URL`` set both verbs go over HTTP; the printers take the alerts' ``to_dict()``
shape, which is also what the server sends.
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table

from loopml.cli._common import console, handle_errors, print_json, remote, workspace

app = typer.Typer(help="Alerts: incidents raised by monitors; list and acknowledge them.", no_args_is_help=True)

_STYLE = {"open": "red", "acknowledged": "yellow", "resolved": "green", "critical": "red", "warning": "yellow"}


def _styled(text: str) -> str:
    style = _STYLE.get(text)
    return f"[{style}]{text}[/{style}]" if style else text


@app.command("list")
@handle_errors
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="open, acknowledged or resolved."),
    endpoint: str | None = typer.Option(None, "--endpoint", "-e", help="Only this endpoint."),
    limit: int = typer.Option(100, "--limit", "-n", help="At most this many alerts."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List alerts, newest first."""
    from loopml.kernel.exceptions import ValidationError

    if status is not None and status not in ("open", "acknowledged", "resolved"):
        raise ValidationError(f"--status {status!r} is unknown; allowed: open, acknowledged, resolved",
                              field="status", rule="allowed_values")
    client = remote()
    if client is not None:
        with client:
            alerts = client.list_alerts(status=status, endpoint=endpoint, limit=limit)
    else:
        from loopml.monitor.alerts import list_alerts

        alerts = [a.to_dict() for a in list_alerts(workspace(), status=status, endpoint=endpoint, limit=limit)]
    if json_out:
        print_json(alerts)
        return
    if not alerts:
        console.print("no alerts")
        return
    table = Table(title=f"alerts ({len(alerts)})")
    for col in ("id", "status", "severity", "endpoint", "rule", "count", "last seen", "message"):
        table.add_column(col, overflow="fold", no_wrap=col == "id")
    for a in alerts:
        seen = a["last_seen"] if isinstance(a["last_seen"], datetime) else datetime.fromisoformat(a["last_seen"])
        table.add_row(str(a["id"]), _styled(a["status"]), _styled(a["severity"]), a["endpoint"] or "-", a["rule"],
                      str(a["count"]), f"{seen:%Y-%m-%d %H:%M}", a["message"])
    console.print(table)


@app.command("ack")
@handle_errors
def ack_cmd(
    alert_id: int = typer.Argument(..., help="The alert id."),
    note: str | None = typer.Option(None, "--note", help="Why, or who is on it (kept in the audit log)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Acknowledge an alert: it stays open for later firings but is marked as taken."""
    from loopml.monitor.alerts import ack_alert

    client = remote()
    if client is not None:  # the server acknowledges it as the token's user
        with client:
            rec = client.ack_alert(alert_id, note=note)
    else:
        rec = ack_alert(workspace(), alert_id, note=note).to_dict()
    if json_out:
        print_json(rec)
        return
    console.print(f"alert {rec['id']} acknowledged by {rec['acked_by']}")
