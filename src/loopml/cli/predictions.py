"""``loopml predictions``: read the prediction log, add ground truth, compact."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import console, handle_errors, print_json, print_table, workspace
from loopml.kernel.exceptions import ValidationError

app = typer.Typer(help="The prediction log: query it, add feedback (true labels), compact it.", no_args_is_help=True)


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
    from loopml.predictions import query_predictions

    ws = workspace()
    df = query_predictions(ws, endpoint, since=since, until=until, model_version=model_version,
                           limit=None if (output or limit == 0) else limit)
    if output is not None:
        suffix = output.suffix.lower()
        if suffix in (".parquet", ".pq"):
            df.to_parquet(output, index=False)
        elif suffix == ".csv":
            df.to_csv(output, index=False)
        else:
            raise ValidationError(f"--output {str(output)!r}: use a .parquet or .csv file", field="output", rule="format")
        if json_out:
            print_json({"endpoint": endpoint, "rows": len(df), "output": str(output)})
        else:
            console.print(f"Wrote {len(df)} rows of {endpoint!r} to {output}")
        return
    if json_out:
        print_json(df.to_dict(orient="records"))
        return
    cols = [c for c in df.columns if c not in ("endpoint", "inputs_json", "outputs_json")]
    print_table(f"{endpoint}: {len(df)} rows", cols, df[cols].itertuples(index=False))


@app.command("count")
@handle_errors
def count(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    since: str = typer.Option(None, "--since"),
    until: str = typer.Option(None, "--until"),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Count logged predictions of ENDPOINT in a time window."""
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
    import pandas as pd

    from loopml.predictions import record_feedback

    if not file.is_file():
        raise ValidationError(f"--file {str(file)!r} does not exist", field="file", rule="exists")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        labels = pd.read_parquet(file)
    elif suffix == ".csv":
        labels = pd.read_csv(file, dtype={"request_id": str})
    else:
        raise ValidationError(f"--file {str(file)!r}: use a .csv or .parquet file", field="file", rule="format")
    result = record_feedback(workspace(), endpoint, labels)
    if json_out:
        print_json(result)
    else:
        console.print(f"Stored {result.rows} labels for {endpoint!r}")


@app.command("compact")
@handle_errors
def compact_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    date: str = typer.Option(..., "--date", help="The UTC day to compact (YYYY-MM-DD)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Merge a day's small log files, one file per hour."""
    from loopml.predictions import compact

    result = compact(workspace(), endpoint, date)
    if json_out:
        print_json(result)
    else:
        console.print(f"{endpoint} {result.date}: {result.files_before} files -> {result.files_after} ({result.rows} rows)")
