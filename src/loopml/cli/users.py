"""``loopml users``: people and service accounts, and their roles per project.

Run against the workspace directly (who can open the database is trusted
with it, as in embedded mode). With ``LOOPML_SERVER_URL`` and ``LOOPML_TOKEN``
set, every verb goes over HTTP: the token's user must be an admin
(``user.admin``, checked by the CLI and again by the server) and is the actor
the audit log names. The printers take the records' ``to_dict()`` shape.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import typer

from loopml.cli._common import (
    console,
    handle_errors,
    print_json,
    print_table,
)
from loopml.cli._remote import call

app = typer.Typer(help="Users and their roles per project (viewer, data_scientist, ml_engineer, approver, admin).",
                  no_args_is_help=True)

#: A service verb over HTTP (LOOPML_SERVER_URL) or on the workspace; its records as dicts.
_call = partial(call, "loopml.governance.identity")


def _roles_text(roles: dict[str, list[str]]) -> str:
    return "; ".join(f"{project}: {', '.join(r)}" for project, r in roles.items()) or "-"


def _parse_role(text: str) -> tuple[str, str]:
    """``ROLE`` or ``ROLE@PROJECT`` → (project, role)."""
    role, _, project = text.partition("@")
    return (project or "default"), role


def _day(value: str) -> str:
    return value[:10]


@app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="User name (letters, digits, _ . -)."),
    email: str = typer.Option(None, "--email"),
    role: list[str] = typer.Option([], "--role", help="ROLE or ROLE@PROJECT (repeatable); * = every project."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a user, with roles."""
    roles: dict[str, list[str]] = {}
    for text in role:
        project, r = _parse_role(text)
        roles.setdefault(project, []).append(r)
    record = _call("create_user", name, email=email, roles=roles)
    if json_out:
        print_json(record)
    else:
        console.print(f"user [bold]{record['name']}[/bold] created; roles: {_roles_text(record['roles'])}")


@app.command("list")
@handle_errors
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every user, with roles per project."""
    rows = _call("list_users")
    if json_out:
        print_json(rows)
        return
    print_table("users", ["name", "email", "active", "roles", "created"],
                [(u["name"], u["email"], u["active"], _roles_text(u["roles"]), _day(u["created_at"])) for u in rows])


@app.command("show")
@handle_errors
def show(name: str = typer.Argument(...), json_out: bool = typer.Option(False, "--json")) -> None:
    """One user, its roles and its tokens (never their secrets)."""
    record, tokens = _call("get_user", name), _call("list_tokens", name)
    if json_out:
        print_json({**record, "tokens": tokens})
        return
    console.print(f"[bold]{record['name']}[/bold] {record['email'] or ''} active={record['active']}")
    console.print(f"roles: {_roles_text(record['roles'])}")
    print_table("tokens", ["id", "name", "status", "expires"],
                [(t["id"], t["name"], t["status"], _day(t["expires_at"])) for t in tokens])


def _show(record: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(record)
    else:
        console.print(f"{record['name']}: {_roles_text(record['roles'])}")


@app.command("grant")
@handle_errors
def grant_(
    name: str = typer.Argument(...),
    role: str = typer.Argument(..., help="viewer | data_scientist | ml_engineer | approver | admin"),
    project: str = typer.Option("default", "--project", help="Project, or * for every project."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Give a user a role in a project."""
    _show(_call("grant", name, role, project), json_out)


@app.command("revoke")
@handle_errors
def revoke(
    name: str = typer.Argument(...),
    role: str = typer.Argument(...),
    project: str = typer.Option("default", "--project"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Take a role in a project away from a user."""
    _show(_call("revoke_role", name, role, project), json_out)


@app.command("disable")
@handle_errors
def disable(
    name: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Disable a user: its tokens stop working at once."""
    record = _call("disable_user", name, reason=reason)
    if json_out:
        print_json(record)
    else:
        console.print(f"user [bold]{record['name']}[/bold] disabled")
