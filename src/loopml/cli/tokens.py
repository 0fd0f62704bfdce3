"""``loopml tokens``: API tokens for the REST server (shown once, stored hashed, expiring, revocable)."""

from __future__ import annotations

import sys

import typer

from loopml.cli._common import (
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    workspace,
)

app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    user: str = typer.Argument(..., help="The user the token acts as."),
    name: str = typer.Option(None, "--name", help="A label, e.g. ci or laptop."),
    expires_in_days: int = typer.Option(90, "--expires-in-days", help="1 to 3650 days."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a token; its secret is printed this once (store it now: it cannot be shown again)."""
    from loopml.governance.identity import create_token

    issued = create_token(workspace(), user, expires_in_days=expires_in_days, name=name)
    if json_out:
        print_json({"id": issued.token_id, "user": user, "token": issued.secret,
                    "expires_at": issued.expires_at})
        return
    err_console.print(f"token {issued.token_id} for {user}, expires {issued.expires_at:%Y-%m-%d}. "
                      "Store it now: it will not be shown again.")
    # The secret alone on stdout, so `export LOOPML_TOKEN=$(loopml tokens create ana)` works.
    sys.stdout.write(issued.secret + "\n")


@app.command("list")
@handle_errors
def list_(
    user: str = typer.Option(None, "--user", help="Only this user's tokens."),
    active: bool = typer.Option(False, "--active", help="Only tokens that still work."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Tokens with their status and expiry (never their secrets)."""
    from loopml.governance.identity import list_tokens

    rows = list_tokens(workspace(), user, include_inactive=not active)
    if json_out:
        print_json([t.to_dict() for t in rows])
        return
    print_table("tokens", ["id", "user", "name", "status", "created", "expires"],
                [(t.id, t.user, t.name, t.status, f"{t.created_at:%Y-%m-%d}", f"{t.expires_at:%Y-%m-%d}")
                 for t in rows])


@app.command("revoke")
@handle_errors
def revoke(
    token_id: str = typer.Argument(..., help="The token's id (the part after lml_)."),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke a token: it stops working at once."""
    from loopml.governance.identity import revoke_token

    record = revoke_token(workspace(), token_id, reason=reason)
    if json_out:
        print_json(record.to_dict())
    else:
        console.print(f"token {record.id} of {record.user} revoked")
