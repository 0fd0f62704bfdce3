"""``loopml score``: batch scoring of a Parquet or CSV file with a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from loopml.cli._common import console, err_console, handle_errors, print_json, remote, workspace


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


def score(
    model_ref: str = typer.Argument(..., help="NAME@ALIAS or NAME/VERSION."),
    input: Path = typer.Option(..., "--input", "-i", help="Parquet or CSV to score."),  # noqa: A002
    output: Path = typer.Option(..., "--output", "-o", help="Where predictions go (.parquet or .csv)."),
    reject: Path = typer.Option(None, "--reject", help="Rows failing the contract (default OUTPUT.rejects.EXT)."),
    batch_rows: int = typer.Option(65536, "--batch-rows", help="Rows per record batch (bounds memory)."),
    executor: str = typer.Option("inprocess", "--executor",
                                 help="inprocess, or ray | ray://HOST:PORT (Parquet input, Ray Data workers)."),
    here: bool = typer.Option(False, "--here", help="With LOOPML_SERVER_URL: score on this machine, on the shared "
                                                    "store, instead of uploading the file to the server."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Score a file in record batches; rows that break the contract go to a reject file.

    With LOOPML_SERVER_URL the server scores the uploaded file; the output comes back checked (sha256).
    """
    client = None if here or executor != "inprocess" else remote()
    if client is not None:
        with client, err_console.status(f"scoring {input.name} on {client.url}", spinner="dots"):
            result = client.score_file(model_ref, input, output, reject=reject, batch_rows=batch_rows)
        _show(result, json_out)
        return
    from loopml.serve.batch import score_file

    if executor == "ray" or executor.startswith("ray:"):
        from functools import partial

        from loopml.serve.batch_ray import score_file_ray

        address = None if executor == "ray" else executor if executor.startswith("ray://") else executor[4:]
        score_file = partial(score_file_ray, address=address)  # type: ignore[assignment]
    elif executor != "inprocess":
        from loopml.kernel.exceptions import ValidationError

        raise ValidationError(f"--executor {executor!r} is unknown; allowed: inprocess, ray, ray://HOST:PORT",
                              field="--executor", rule="choice")
    ws = workspace()
    if json_out:
        _show(score_file(ws, model_ref, input, output, reject_path=reject, batch_rows=batch_rows).to_dict(), True)
        return
    with Progress(TextColumn("scoring"), BarColumn(), TextColumn("{task.completed:,.0f} rows"),
                  _RowsPerSecond(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("score", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        result = score_file(ws, model_ref, input, output, reject_path=reject, batch_rows=batch_rows, progress=progress)
    _show(result.to_dict(), False)


def _show(result: dict[str, Any], json_out: bool) -> None:
    """A scored batch (``BatchResult.to_dict()``), as JSON or as three lines."""
    if json_out:
        print_json(result)
        return
    console.print(f"Scored {result['rows_scored']:,} of {result['rows_in']:,} rows with {result['model_name']}/"
                  f"{result['model_version']} in {result['seconds']:.2f}s -> {result['output_path']}")
    if result["rows_rejected"]:
        console.print(f"[yellow]{result['rows_rejected']:,} rows rejected[/yellow] -> {result['reject_path']}")
    console.print(f"batch {result['batch_id']}  input sha256 {result['input_digest'][:12]}  "
                  f"output sha256 {result['output_digest'][:12]}")


def register(app: typer.Typer) -> None:
    """Add the top-level ``score`` command."""
    app.command("score")(handle_errors(score))
