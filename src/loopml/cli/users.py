"""``loopml users``: people and service accounts, and their roles per project.

Run against the workspace directly (who can open the database is trusted
with it, as in embedded mode). With ``LOOPML_SERVER_URL`` and ``LOOPML_TOKEN``
set, the token's user must be an admin (``user.admin``, checked through the
server's ``/whoami``) and is the actor the audit log names.
"""

from __future__ import annotations

from typing import Any

import typer

from loopml.cli._common import (
    console,
    handle_errors,
    print_json,
    print_table,
    workspace,
)

app = typer.Typer(help="Users and their roles per project (viewer, data_scientist, ml_engineer, approver, admin).",
                  no_args_is_help=True)


def _roles_text(roles: dict[str, list[str]]) -> str:
    return "; ".join(f"{project}: {', '.join(r)}" for project, r in roles.items()) or "-"


def _parse_role(text: str) -> tuple[str, str]:
    """``ROLE`` or ``ROLE@PROJECT`` → (project, role)."""
    role, _, project = text.partition("@")
    return (project or "default"), role


@app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="User name (letters, digits, _ . -)."),
    email: str = typer.Option(None, "--email"),
    role: list[str] = typer.Option([], "--role", help="ROLE or ROLE@PROJECT (repeatable); * = every project."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a user, with roles."""
    from loopml.governance.identity import create_user

    roles: dict[str, list[str]] = {}
    for text in role:
        project, r = _parse_role(text)
        roles.setdefault(project, []).append(r)
    record = create_user(workspace(), name, email=email, roles=roles)
    if json_out:
        print_json(record)
    else:
        console.print(f"user [bold]{record.name}[/bold] created; roles: {_roles_text(record.roles)}")


@app.command("list")
@handle_errors
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every user, with roles per project."""
    from loopml.governance.identity import list_users

    rows = list_users(workspace())
    if json_out:
        print_json(rows)
        return
    print_table("users", ["name", "email", "active", "roles", "created"],
                [(u.name, u.email, u.active, _roles_text(u.roles), f"{u.created_at:%Y-%m-%d}") for u in rows])


@app.command("show")
@handle_errors
def show(name: str = typer.Argument(...), json_out: bool = typer.Option(False, "--json")) -> None:
    """One user, its roles and its tokens (never their secrets)."""
    from loopml.governance.identity import get_user, list_tokens

    ws = workspace()
    record = get_user(ws, name)
    tokens = list_tokens(ws, name)
    if json_out:
        print_json({**record.to_dict(), "tokens": [t.to_dict() for t in tokens]})
        return
    console.print(f"[bold]{record.name}[/bold] {record.email or ''} active={record.active}")
    console.print(f"roles: {_roles_text(record.roles)}")
    print_table("tokens", ["id", "name", "status", "expires"],
                [(t.id, t.name, t.status, f"{t.expires_at:%Y-%m-%d}") for t in tokens])


def _show(record: Any, json_out: bool) -> None:
    if json_out:
        print_json(record)
    else:
        console.print(f"{record.name}: {_roles_text(record.roles)}")


@app.command("grant")
@handle_errors
def grant_(
    name: str = typer.Argument(...),
    role: str = typer.Argument(..., help="viewer | data_scientist | ml_engineer | approver | admin"),
    project: str = typer.Option("default", "--project", help="Project, or * for every project."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Give a user a role in a project."""
    from loopml.governance.identity import grant

    record = grant(workspace(), name, role, project)
    _show(record, json_out)


@app.command("revoke")
@handle_errors
def revoke(
    name: str = typer.Argument(...),
    role: str = typer.Argument(...),
    project: str = typer.Option("default", "--project"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Take a role in a project away from a user."""
    from loopml.governance.identity import revoke_role

    record = revoke_role(workspace(), name, role, project)
    _show(record, json_out)


@app.command("disable")
@handle_errors
def disable(
    name: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Disable a user: its tokens stop working at once."""
    from loopml.governance.identity import disable_user

    record = disable_user(workspace(), name, reason=reason)
    if json_out:
        print_json(record)
    else:
        console.print(f"user [bold]{record.name}[/bold] disabled")
