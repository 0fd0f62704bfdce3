"""``loopml privacy``: retention of the prediction log and feedback, and erasure of one subject's rows."""

from __future__ import annotations

import typer

from loopml.cli._common import (
    JsonOpt,
    console,
    handle_errors,
    print_json,
    print_table,
    workspace,
)

app = typer.Typer(help="Data protection: retention policies and the right to erasure.", no_args_is_help=True)
retention_app = typer.Typer(help="How long predictions and feedback are kept, per endpoint.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("set")
@handle_errors
def retention_set(endpoint: str = typer.Argument(...), days: int = typer.Option(..., "--days", min=1, max=36_500),
                  json_out: bool = JsonOpt) -> None:
    """Keep ENDPOINT's predictions and feedback DAYS days."""
    from loopml.predictions import set_retention

    rec = set_retention(workspace(), endpoint, days)
    if json_out:
        print_json(rec.to_dict())
    else:
        console.print(f"{rec.endpoint}: predictions and feedback kept {rec.days} days")


@retention_app.command("show")
@handle_errors
def retention_show(json_out: bool = JsonOpt) -> None:
    """Every retention policy."""
    from loopml.predictions import list_retention

    rows = list_retention(workspace())
    if json_out:
        print_json([r.to_dict() for r in rows])
        return
    print_table("retention", ["endpoint", "days", "updated by", "last applied"],
                [(r.endpoint, r.days, r.updated_by, r.last_applied_at) for r in rows])


@retention_app.command("apply")
@handle_errors
def retention_apply(endpoint: str = typer.Option(None, "--endpoint"), json_out: bool = JsonOpt) -> None:
    """Delete the partitions the policies no longer keep (audited)."""
    from loopml.predictions import apply_retention

    results = apply_retention(workspace(), endpoint)
    if json_out:
        print_json([r.to_dict() for r in results])
        return
    print_table("retention applied", ["endpoint", "days", "cutoff", "prediction rows", "feedback rows"],
                [(r.endpoint, r.days, r.cutoff, r.prediction_rows, r.feedback_rows) for r in results])


@app.command("erase")
@handle_errors
def erase(
    subject_key: str = typer.Option(..., "--subject-key", help="The log column: f_<feature> or request_id."),
    value: str = typer.Option(..., "--value", help="The subject's key value (never stored: only its sha256)."),
    endpoint: str = typer.Option(None, "--endpoint", help="Only this endpoint (default: every endpoint)."),
    json_out: bool = JsonOpt,
) -> None:
    """Erase every logged row about one subject, and its feedback (the right to erasure)."""
    from loopml.predictions import erase_subject

    result = erase_subject(workspace(), subject_key, value, endpoint=endpoint)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(f"erased {result.prediction_rows} prediction row(s) and {result.feedback_rows} feedback row(s) "
                  f"where {result.column} matched (sha256 {result.value_sha256[:12]}…); "
                  f"{result.files_rewritten} file(s) rewritten, {result.files_deleted} deleted")
