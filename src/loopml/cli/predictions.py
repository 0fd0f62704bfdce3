"""``loopml predictions``: read the prediction log, add ground truth, compact.

With ``LOOPML_SERVER_URL`` set every verb goes over HTTP: ``query`` pages through the rows (``--output``
downloads them as one Parquet/CSV file), ``feedback`` uploads the labels file. Rows print from their JSON
form (times as ISO text, missing values empty), the same from the store or the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from loopml.cli._common import console, handle_errors, print_json, print_table, remote, workspace
from loopml.kernel.exceptions import ValidationError

app = typer.Typer(help="The prediction log: query it, add feedback (true labels), compact it.", no_args_is_help=True)

#: Columns the table leaves out (the JSON has them).
_WIDE = ("endpoint", "inputs_json", "outputs_json")


def _check_output(output: Path) -> None:
    if output.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise ValidationError(f"--output {str(output)!r}: use a .parquet or .csv file", field="output", rule="format")


@app.command("query")
@handle_errors
def query(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    since: str = typer.Option(None, "--since", help="Start: a duration ago (15m, 1h, 7d) or an ISO time."),
    until: str = typer.Option(None, "--until", help="End (exclusive): a duration ago or an ISO time."),
    model_version: int = typer.Option(None, "--model-version", help="Only this model version."),
    limit: int = typer.Option(20, "--limit", help="Most rows to show (0 = all)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write every matching row to this Parquet/CSV file."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show logged predictions of ENDPOINT in a time window."""
    window: dict[str, Any] = {"since": since, "until": until, "model_version": model_version}
    if output is not None:
        _check_output(output)
        rows = _export(endpoint, output, window)
        if json_out:
            print_json({"endpoint": endpoint, "rows": rows, "output": str(output)})
        else:
            console.print(f"Wrote {rows} rows of {endpoint!r} to {output}")
        return
    client = remote()
    if client is not None:
        with client:
            records = client.query_predictions(endpoint, **window, limit=limit or None)
    else:
        from loopml.predictions import json_records, query_predictions

        records = json_records(query_predictions(workspace(), endpoint, **window, limit=limit or None))
    if json_out:
        print_json(records)
        return
    cols = [c for c in (records[0] if records else {}) if c not in _WIDE]
    print_table(f"{endpoint}: {len(records)} rows", cols, [[r[c] for c in cols] for r in records])


def _export(endpoint: str, output: Path, window: dict[str, Any]) -> int:
    """Every matching row to ``output`` (Parquet or CSV by its suffix); the number of rows."""
    client = remote()
    if client is not None:
        with client:
            return client.export_predictions(endpoint, output, **window)
    from loopml.predictions import query_predictions

    df = query_predictions(workspace(), endpoint, **window)
    if output.suffix.lower() == ".csv":
        df.to_csv(output, index=False)
    else:
        df.to_parquet(output, index=False)
    return len(df)


@app.command("count")
@handle_errors
def count(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    since: str = typer.Option(None, "--since"),
    until: str = typer.Option(None, "--until"),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Count logged predictions of ENDPOINT in a time window."""
    client = remote()
    if client is not None:
        with client:
            n = client.count_predictions(endpoint, since=since, until=until)
    else:
        from loopml.predictions import count_predictions

        n = count_predictions(workspace(), endpoint, since=since, until=until)
    if json_out:
        print_json({"endpoint": endpoint, "count": n})
    else:
        console.print(f"{n}")


@app.command("feedback")
@handle_errors
def feedback(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    file: Path = typer.Option(..., "--file", "-f", help="CSV or Parquet with request_id, label [, ts, row]."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Store true labels for ENDPOINT's predictions (joined later by request id)."""
    from loopml.predictions import read_feedback_file

    labels = read_feedback_file(file)  # checked here either way: a bad file is refused before any upload
    client = remote()
    if client is not None:
        with client:
            result = client.record_feedback(endpoint, file)
    else:
        from loopml.predictions import record_feedback

        result = record_feedback(workspace(), endpoint, labels).to_dict()
    if json_out:
        print_json(result)
    else:
        console.print(f"Stored {result['rows']} labels for {endpoint!r}")


@app.command("compact")
@handle_errors
def compact_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    date: str = typer.Option(..., "--date", help="The UTC day to compact (YYYY-MM-DD)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Merge a day's small log files, one file per hour."""
    client = remote()
    if client is not None:
        with client:
            result = client.compact(endpoint, date)
    else:
        from loopml.predictions import compact

        result = compact(workspace(), endpoint, date).to_dict()
    if json_out:
        print_json(result)
    else:
        console.print(f"{endpoint} {result['date']}: {result['files_before']} files -> {result['files_after']} "
                      f"({result['rows']} rows)")
