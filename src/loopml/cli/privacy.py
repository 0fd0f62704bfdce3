"""``loopml privacy``: retention of the prediction log and feedback, and erasure of one subject's rows.

With ``LOOPML_SERVER_URL`` set every verb goes over HTTP (the subject's key travels in the request body);
the printers take the records' ``to_dict()`` shape, which is also what the server sends.
"""

from __future__ import annotations

from functools import partial

import typer

from loopml.cli._common import (
    JsonOpt,
    console,
    handle_errors,
    print_json,
    print_table,
)
from loopml.cli._remote import call

app = typer.Typer(help="Data protection: retention policies and the right to erasure.", no_args_is_help=True)
retention_app = typer.Typer(help="How long predictions and feedback are kept, per endpoint.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")

#: A service verb over HTTP (LOOPML_SERVER_URL) or on the workspace; its records as dicts.
_call = partial(call, "loopml.predictions")


@retention_app.command("set")
@handle_errors
def retention_set(endpoint: str = typer.Argument(...), days: int = typer.Option(..., "--days", min=1, max=36_500),
                  json_out: bool = JsonOpt) -> None:
    """Keep ENDPOINT's predictions and feedback DAYS days."""
    rec = _call("set_retention", endpoint, days)
    if json_out:
        print_json(rec)
    else:
        console.print(f"{rec['endpoint']}: predictions and feedback kept {rec['days']} days")


@retention_app.command("show")
@handle_errors
def retention_show(json_out: bool = JsonOpt) -> None:
    """Every retention policy."""
    rows = _call("list_retention")
    if json_out:
        print_json(rows)
        return
    print_table("retention", ["endpoint", "days", "updated by", "last applied"],
                [(r["endpoint"], r["days"], r["updated_by"], r["last_applied_at"]) for r in rows])


@retention_app.command("apply")
@handle_errors
def retention_apply(endpoint: str = typer.Option(None, "--endpoint"), json_out: bool = JsonOpt) -> None:
    """Delete the partitions the policies no longer keep (audited)."""
    results = _call("apply_retention", endpoint)
    if json_out:
        print_json(results)
        return
    print_table("retention applied", ["endpoint", "days", "cutoff", "prediction rows", "feedback rows"],
                [(r["endpoint"], r["days"], r["cutoff"], r["prediction_rows"], r["feedback_rows"]) for r in results])


@app.command("erase")
@handle_errors
def erase(
    subject_key: str = typer.Option(..., "--subject-key", help="The log column: f_<feature> or request_id."),
    value: str = typer.Option(..., "--value", help="The subject's key value (never stored: only its sha256)."),
    endpoint: str = typer.Option(None, "--endpoint", help="Only this endpoint (default: every endpoint)."),
    json_out: bool = JsonOpt,
) -> None:
    """Erase every logged row about one subject, and its feedback (the right to erasure)."""
    result = _call("erase_subject", subject_key, value, endpoint=endpoint)
    if json_out:
        print_json(result)
        return
    console.print(f"erased {result['prediction_rows']} prediction row(s) and {result['feedback_rows']} feedback "
                  f"row(s) where {result['column']} matched (sha256 {result['value_sha256'][:12]}…); "
                  f"{result['files_rewritten']} file(s) rewritten, {result['files_deleted']} deleted")
