"""``loopml models``: the registry — list, show, versions, alias, history.

With ``LOOPML_SERVER_URL`` set these verbs go over HTTP; the printers take the records' ``to_dict()``
shape, which is also what the server sends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from loopml.cli._common import JsonOpt, console, handle_errors, print_json, print_table, remote, workspace

app = typer.Typer(help="The model registry: versions, aliases, history.", no_args_is_help=True)


def _when(value: datetime | str | None) -> str:
    """A record's time (a datetime) or its JSON (ISO text), to the minute."""
    if value is None:
        return ""
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")


def _short_metrics(evaluation: dict[str, Any] | None, limit: int = 3) -> str:
    if not isinstance(evaluation, dict):
        return ""
    overall = evaluation.get("metrics", evaluation)
    items = [(k, v) for k, v in overall.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k}={v:.4g}" for k, v in items[:limit])


@app.command("list")
@handle_errors
def list_cmd(json_out: bool = JsonOpt) -> None:
    """Every registered model with its latest version and aliases."""
    client = remote()
    if client is not None:
        with client:
            models = client.list_models()
    else:
        from loopml.register import list_models

        models = [m.to_dict() for m in list_models(workspace())]
    if json_out:
        print_json(models)
        return
    if not models:
        console.print("No models registered yet.")
        return
    print_table(
        "Models",
        ["name", "latest", "versions", "aliases", "created"],
        [
            (m["name"], m["latest_version"], m["n_versions"],
             ", ".join(f"{a}→{v}" for a, v in m["aliases"].items()), _when(m["created_at"]))
            for m in models
        ],
    )


@app.command("show")
@handle_errors
def show(
    ref: str = typer.Argument(..., help="NAME@ALIAS, NAME/VERSION or NAME (the latest)."),
    json_out: bool = JsonOpt,
) -> None:
    """One model version: signature, evaluation, gates, lineage pointers."""
    client = remote()
    if client is not None:
        with client:
            rec = client.resolve(ref)
    else:
        from loopml.register import resolve

        rec = resolve(workspace(), ref).to_dict()
    if json_out:
        print_json(rec)
        return
    console.print(f"[bold]{rec['ref']}[/bold]" + (f"  ({', '.join(rec['aliases'])})" if rec["aliases"] else ""))
    rows = [
        ("task", rec["task"]), ("flavor", rec["flavor"]), ("artifact", rec["artifact_digest"]),
        ("gates passed", rec["gates_passed"]), ("metrics", _short_metrics(rec["evaluation"])),
        ("run", rec["run_id"]), ("datasets", ", ".join(rec["dataset_versions"])),
        ("git", (rec["git_commit"] or "") + (" (dirty)" if rec["git_dirty"] else "")),
        ("features", ", ".join((rec["signature"] or {}).get("columns", {}))),
        ("tags", ", ".join(f"{k}={v}" for k, v in rec["tags"].items())),
        ("description", rec["description"]), ("created", f"{_when(rec['created_at'])} by {rec['created_by']}"),
    ]
    print_table(None, ["field", "value"], rows)


@app.command("versions")
@handle_errors
def versions(name: str = typer.Argument(..., help="Model name."), json_out: bool = JsonOpt) -> None:
    """Every version of a model, oldest first."""
    client = remote()
    if client is not None:
        with client:
            recs = client.list_versions(name)
    else:
        from loopml.register import list_versions

        recs = [r.to_dict() for r in list_versions(workspace(), name)]
    if json_out:
        print_json(recs)
        return
    print_table(
        f"Versions of {name}",
        ["version", "aliases", "task", "gates", "metrics", "artifact", "run", "created"],
        [
            (r["version"], ", ".join(r["aliases"]), r["task"], r["gates_passed"], _short_metrics(r["evaluation"]),
             r["artifact_digest"][:12], r["run_id"], _when(r["created_at"]))
            for r in recs
        ],
    )


@app.command("alias")
@handle_errors
def alias(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="Alias to set, e.g. champion."),
    version: int = typer.Argument(..., help="Version the alias should point at."),
    reason: str = typer.Option(None, "--reason", help="Why (kept in the alias history and audit log)."),
    json_out: bool = JsonOpt,
) -> None:
    """Point NAME@ALIAS at VERSION (atomic; recorded in the history and the audit log)."""
    from loopml.register import set_alias

    client = remote()
    if client is not None:  # the server moves it as the token's user (protected aliases need an approver)
        with client:
            rec = client.set_alias(name, alias_name, version, reason=reason)
    else:
        rec = set_alias(workspace(), name, alias_name, version, reason=reason).to_dict()
    if json_out:
        print_json(rec)
        return
    if rec["previous_version"] is None:
        console.print(f"{rec['ref']} → version {rec['version']}")
    else:
        console.print(f"{rec['ref']} → version {rec['version']} (was {rec['previous_version']})")


@app.command("history")
@handle_errors
def history(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Argument(None, metavar="[ALIAS]", help="Only this alias."),
    json_out: bool = JsonOpt,
) -> None:
    """Every move of a model's aliases, oldest first."""
    client = remote()
    if client is not None:
        with client:
            changes = client.alias_history(name, alias_name)
    else:
        from loopml.register import alias_history

        changes = [c.to_dict() for c in alias_history(workspace(), name, alias_name)]
    if json_out:
        print_json(changes)
        return
    print_table(
        f"Alias history of {name}",
        ["when", "alias", "from", "to", "actor", "reason"],
        [(_when(c["ts"]), c["alias"], c["from_version"],
          c["to_version"] if c["to_version"] is not None else "(removed)", c["actor"], c["reason"]) for c in changes],
    )


def _attach_export() -> None:
    """``loopml models export`` lives with the serving code it wraps (slim install without it)."""
    from loopml.cli.models_export import register_export

    register_export(app)


_attach_export()


def _attach_card() -> None:
    """``loopml models card`` lives with governance (model cards)."""
    from loopml.cli.cards import register_card

    register_card(app)


_attach_card()
