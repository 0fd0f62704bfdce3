"""``loopml tokens``: API tokens for the REST server (shown once, stored hashed, expiring, revocable).

On the workspace, whoever can open the store may issue tokens. With ``LOOPML_SERVER_URL`` and
``LOOPML_TOKEN`` every verb goes over HTTP under the server's rules: issuing a token and listing
every user's need ``token.admin``; anyone may list and revoke their own.
"""

from __future__ import annotations

import sys

import typer

from loopml.cli._common import (
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    remote,
    workspace,
)
from loopml.cli._remote import call

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
    client = remote()
    if client is not None:
        with client:
            made = client.create_token(user, expires_in_days=expires_in_days, name=name)
        token_id, secret, expires = made["id"], made["token"], str(made["expires_at"])
    else:
        from loopml.governance.identity import create_token

        issued = create_token(workspace(), user, expires_in_days=expires_in_days, name=name)
        token_id, secret, expires = issued.token_id, issued.secret, issued.expires_at.isoformat()
    if json_out:
        print_json({"id": token_id, "user": user, "token": secret, "expires_at": expires})
        return
    err_console.print(f"token {token_id} for {user}, expires {expires[:10]}. "
                      "Store it now: it will not be shown again.")
    # The secret alone on stdout, so `export LOOPML_TOKEN=$(loopml tokens create ana)` works.
    sys.stdout.write(secret + "\n")


@app.command("list")
@handle_errors
def list_(
    user: str = typer.Option(None, "--user", help="Only this user's tokens."),
    active: bool = typer.Option(False, "--active", help="Only tokens that still work."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Tokens with their status and expiry (never their secrets)."""
    rows = call("loopml.governance.identity", "list_tokens", user, include_inactive=not active)
    if json_out:
        print_json(rows)
        return
    print_table("tokens", ["id", "user", "name", "status", "created", "expires"],
                [(t["id"], t["user"], t["name"], t["status"], str(t["created_at"])[:10], str(t["expires_at"])[:10])
                 for t in rows])


@app.command("revoke")
@handle_errors
def revoke(
    token_id: str = typer.Argument(..., help="The token's id (the part after lml_)."),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke a token: it stops working at once."""
    record = call("loopml.governance.identity", "revoke_token", token_id, reason=reason)
    if json_out:
        print_json(record)
    else:
        console.print(f"token {record['id']} of {record['user']} revoked")
