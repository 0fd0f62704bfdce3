"""``loopml models export``: a registered model as an ONNX file, with its parity check."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import console, handle_errors, print_json, workspace


def export_command(
    model_ref: str = typer.Argument(..., help="NAME@ALIAS or NAME/VERSION."),
    format: str = typer.Option("onnx", "--format", "-f", help="Export format (onnx)."),
    output: Path = typer.Option(None, "--output", "-o", help="The file (default .loopml/exports/NAME-VERSION.onnx)."),
    sample: Path = typer.Option(None, "--sample", help="Parquet or CSV rows to check parity on."),
    tolerance: float = typer.Option(1e-4, "--tolerance", help="Largest absolute difference allowed."),
    allow_parity_failure: bool = typer.Option(False, "--allow-parity-failure",
                                              help="Write and record the file even when parity fails."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Export a model for edge devices; checks the export against the original first.

    With ``LOOPML_SERVER_URL`` the server converts and checks (and records the export), and the file is
    downloaded here, checked against its sha256 (default ``./NAME-VERSION.onnx``).
    """
    from loopml.cli._common import remote

    client = remote()
    with console.status(f"exporting {model_ref} to {format} and checking parity", spinner="dots"):
        if client is not None:
            with client:
                result = client.export_model(model_ref, output, format=format, tolerance=tolerance, sample=sample,
                                             allow_parity_failure=allow_parity_failure)
        else:
            from loopml.serve.export import export_model, read_sample

            frame = read_sample(sample) if sample is not None else None
            result = export_model(workspace(), model_ref, format=format, output=output, sample=frame,
                                  tolerance=tolerance, require_parity=not allow_parity_failure).to_dict()
    if json_out:
        print_json(result)
        return
    p = result["parity"]
    proba = p["max_abs_diff_proba"] is not None
    diff = p["max_abs_diff_proba"] if proba else p["max_abs_diff"]
    label = "max |diff| proba" if proba else "max |diff|"
    verdict = "[green]parity passed[/green]" if p["passed"] else "[red]parity FAILED[/red]"
    console.print(f"Exported {result['model_name']}/{result['model_version']} to {result['format']} -> {result['path']}")
    console.print(f"  sha256 {result['digest'][:12]}  {result['size']:,} bytes  inputs: "
                  + ", ".join(f"{i['name']} ({i['type']})" for i in result["inputs"]))
    agreement = "" if p["label_agreement"] is None else f", label agreement {p['label_agreement']:.2%}"
    console.print(f"  {verdict} on {p['n_rows']} rows ({p['source']}): {label} {diff:.3g} "
                  f"(tolerance {p['tolerance']:g}){agreement}")
    if not p["passed"]:
        raise typer.Exit(1)


def register_export(models_app: typer.Typer) -> None:
    """Add ``export`` to the ``models`` group (the lead mounts it)."""
    models_app.command("export")(handle_errors(export_command))
