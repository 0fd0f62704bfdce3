"""``loopml approvals``: policies, requests and decisions.

Embedded, it works on the workspace directly as ``LOOPML_ACTOR`` (who can open
the database is trusted with it). With ``LOOPML_SERVER_URL`` and
``LOOPML_TOKEN`` set, every verb goes to the server's ``/approvals`` routes as
the token's user, and the server checks the roles (approve and reject need
``approver``; policies and overrides ``admin``).
"""

from __future__ import annotations

from typing import Any

import typer

from loopml.cli._common import (
    JsonOpt,
    console,
    handle_errors,
    print_json,
    print_table,
    remote,
    workspace,
)

app = typer.Typer(help="Approvals: N approvers (not the author) before champion moves or production traffic.",
                  no_args_is_help=True)
policy_app = typer.Typer(help="Approval policies per model or endpoint.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _show_request(rec: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(rec)
        return
    where = f" on endpoint {rec['endpoint']}" if rec["endpoint"] else ""
    console.print(f"approval request {rec['id']}: {rec['ref']}{where} is [bold]{rec['status']}[/bold] "
                  f"({len(rec['approvers'])}/{rec['required']} approvals; author {rec['author']})")


@policy_app.command("set")
@handle_errors
def policy_set(
    target: str = typer.Argument(..., help="model:NAME or endpoint:NAME"),
    approvals: int = typer.Option(..., "--approvals", "-n", min=0, max=20, help="Approvals needed (0: none)."),
    alias: str = typer.Option("champion", "--alias", help="The alias a model policy protects."),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = JsonOpt,
) -> None:
    """Require N approvals for a model's alias moves or an endpoint's traffic."""
    from loopml.governance.approvals import set_policy

    client = remote()
    if client is not None:
        with client:
            rec = client.set_policy(target, approvals, alias=alias, reason=reason)
    else:
        rec = set_policy(workspace(), target, approvals, alias=alias, reason=reason).to_dict()
    if json_out:
        print_json(rec)
    else:
        console.print(f"{rec['target']} needs {rec['required']} approval(s)"
                      + (f" to move @{rec['alias']}" if rec["alias"] else ""))


@policy_app.command("show")
@handle_errors
def policy_show(
    target: str = typer.Argument(None, help="model:NAME or endpoint:NAME; all when left out."),
    json_out: bool = JsonOpt,
) -> None:
    """One policy, or all of them."""
    from loopml.governance.approvals import get_policy, list_policies

    client = remote()
    if client is not None:
        with client:
            rows = [client.get_policy(target)] if target else client.list_policies()
    else:
        ws = workspace()
        rows = [r.to_dict() for r in ([get_policy(ws, target)] if target else list_policies(ws))]
    if json_out:
        print_json(rows)
        return
    print_table("approval policies", ["target", "required", "alias", "updated", "by"],
                [(r["target"], r["required"], r["alias"], _when(r["updated_at"]), r["updated_by"]) for r in rows])


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


@app.command("request")
@handle_errors
def request(
    model_ref: str = typer.Argument(..., help="NAME/VERSION or NAME@ALIAS"),
    endpoint: str = typer.Option(None, "--endpoint", help="Ask for this endpoint's traffic too."),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = JsonOpt,
) -> None:
    """Ask for approvals of a model version."""
    from loopml.governance.approvals import request_approval

    client = remote()
    if client is not None:
        with client:
            _show_request(client.request_approval(model_ref, endpoint=endpoint, reason=reason), json_out)
        return
    _show_request(request_approval(workspace(), model_ref, endpoint=endpoint, reason=reason).to_dict(), json_out)


def _decide(verb: str, request_id: int, reason: str, json_out: bool) -> None:
    from loopml.governance import approvals

    client = remote()
    if client is not None:
        with client:
            _show_request(getattr(client, verb)(request_id, reason=reason), json_out)
        return
    _show_request(getattr(approvals, verb)(workspace(), request_id, reason=reason).to_dict(), json_out)


@app.command("approve")
@handle_errors
def approve(request_id: int = typer.Argument(..., min=1), reason: str = typer.Option(..., "--reason"),
            json_out: bool = JsonOpt) -> None:
    """Approve a request (not as the version's author)."""
    _decide("approve", request_id, reason, json_out)


@app.command("reject")
@handle_errors
def reject(request_id: int = typer.Argument(..., min=1), reason: str = typer.Option(..., "--reason"),
           json_out: bool = JsonOpt) -> None:
    """Reject a request (final)."""
    _decide("reject", request_id, reason, json_out)


@app.command("override")
@handle_errors
def override(request_id: int = typer.Argument(..., min=1), reason: str = typer.Option(..., "--reason"),
             json_out: bool = JsonOpt) -> None:
    """Let a version through without its approvals (an admin's call; audited)."""
    _decide("override", request_id, reason, json_out)


@app.command("list")
@handle_errors
def list_(
    status: str = typer.Option(None, "--status", help="pending | approved | rejected | overridden"),
    model: str = typer.Option(None, "--model"),
    json_out: bool = JsonOpt,
) -> None:
    """Approval requests, newest first."""
    from loopml.governance.approvals import list_requests

    client = remote()
    if client is not None:
        with client:
            rows = client.list_approvals(status=status, model=model, limit=None)
    else:
        rows = [r.to_dict() for r in list_requests(workspace(), status=status, model=model)]
    if json_out:
        print_json(rows)
        return
    print_table("approval requests", ["id", "version", "endpoint", "status", "approvals", "requested by", "approvers"],
                [(r["id"], r["ref"], r["endpoint"], r["status"], f"{len(r['approvers'])}/{r['required']}",
                  r["requested_by"], ", ".join(r["approvers"])) for r in rows])
