"""``loopml data``: ingest, list, show, validate, edit contracts, profile reports.

With ``LOOPML_SERVER_URL`` set every verb goes over HTTP (``ingest`` uploads the file; ``--query`` reads a
database from this machine and needs the store); a contract file (``validate --contract``, ``contract --edit``)
is read here and its content sent. The printers take the records' ``to_dict()`` shape, which is also what the
server sends.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from loopml.cli._common import console, handle_errors, print_json, print_table, remote, workspace

app = typer.Typer(help="Datasets: versions, contracts, validation and profiles.", no_args_is_help=True)


@app.command("ingest")
@handle_errors
def ingest_cmd(
    path: str = typer.Argument(..., help="A CSV or Parquet file, or a SQLAlchemy URL (with --query)."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name."),
    query: str | None = typer.Option(None, "--query", "-q", help="SQL query for a database URL."),
    target: str | None = typer.Option(None, "--target", help="Target column (recorded in the inferred contract)."),
    description: str | None = typer.Option(None, "--description", help="Set on a new dataset."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Store a new dataset version (identical data returns the existing version).

    Against a server (LOOPML_SERVER_URL) the file is uploaded; a database (--query) needs the store.
    """
    client = remote()
    if client is not None:
        if query is not None:
            from loopml.kernel.exceptions import ValidationError

            raise ValidationError("--query reads a database from this machine, which cannot be uploaded to "
                                  "LOOPML_SERVER_URL: ingest a CSV or Parquet file instead", field="query",
                                  rule="remote")
        with client, console.status(f"uploading {path}", spinner="dots") if not json_out else _nullcontext():
            rec = client.ingest(path, name, target=target, description=description)
    else:
        rec = _ingest_here(path, name, query=query, target=target, description=description, quiet=json_out)
    if json_out:
        print_json(rec)
        return
    verb = "stored" if rec["new"] else "unchanged: same content as"
    console.print(f"{verb} [bold]{rec['ref']}[/bold]: {rec['n_rows']:,} rows x {rec['n_columns']} columns, "
                  f"digest {rec['digest'][:12]}")
    report = rec["validation"]
    if not report["ok"]:
        messages = "; ".join(f["message"] for f in report["failures"][:3])
        console.print(f"[yellow]warning:[/yellow] {report['n_errors']} rule(s) failed, {report['n_warnings']} "
                      f"warning(s) on {report['n_rows']} rows: {messages}")


def _ingest_here(path: str, name: str, *, query: str | None, target: str | None, description: str | None,
                 quiet: bool) -> dict[str, Any]:
    """Ingest into the workspace with a progress line; the version's JSON with its ``validation`` report."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from loopml.ingest import ingest
    from loopml.validate import get_contract, validate_dataset

    ws = workspace()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"ingesting {path}", total=None)
        rec = ingest(ws, path, name, query=query, target=target, description=description,
                     progress=lambda stage: bar.update(task, description=f"{stage} {name}"))
        bar.update(task, description="checking the contract")
        report = validate_dataset(ws, rec, get_contract(ws, name))
    return {**rec.to_dict(profile=False), "validation": report.to_dict()}


@app.command("list")
@handle_errors
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Every dataset with its latest version."""
    client = remote()
    if client is not None:
        with client:
            rows = client.list_datasets()
    else:
        from loopml.ingest import list_datasets

        rows = [r.to_dict() for r in list_datasets(workspace())]
    if json_out:
        print_json(rows)
        return
    print_table("datasets", ["name", "versions", "latest", "contract", "created", "by"],
                [(r["name"], r["n_versions"], r["latest_version"], "yes" if r["has_contract"] else "no",
                  _when(r["created_at"]), r["created_by"]) for r in rows])


@app.command("versions")
@handle_errors
def versions_cmd(
    name: str = typer.Argument(..., help="Dataset name."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Every version of a dataset."""
    client = remote()
    if client is not None:
        with client:
            rows = client.list_dataset_versions(name)
    else:
        from loopml.ingest import list_versions

        rows = [r.to_dict(profile=False) for r in list_versions(workspace(), name)]
    if json_out:
        print_json(rows)
        return
    print_table(f"versions of {name}", ["version", "rows", "columns", "digest", "source", "created", "by"],
                [(r["version"], f"{r['n_rows']:,}", r["n_columns"], r["digest"][:12], _source(r["source"]),
                  _when(r["created_at"]), r["created_by"]) for r in rows])


def _source(source: dict[str, Any]) -> str:
    return str(source.get("path") or source.get("url") or source.get("kind"))


def _when(value: datetime | str) -> str:
    """A record's time (a datetime) or its JSON (ISO text), to the minute."""
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")


@app.command("show")
@handle_errors
def show_cmd(
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """A version's schema and per-column summary."""
    client = remote()
    if client is not None:
        with client:
            rec = client.get_dataset_version(ref)
    else:
        from loopml.ingest import get_dataset_version

        rec = get_dataset_version(workspace(), ref).to_dict()
    if json_out:
        print_json(rec)
        return
    console.print(f"[bold]{rec['ref']}[/bold]  {rec['n_rows']:,} rows x {rec['n_columns']} columns  "
                  f"digest {rec['digest'][:16]}  source {_source(rec['source'])}")
    cols = rec["profile"]["columns"]
    print_table(None, ["column", "type", "missing", "distinct", "min", "median", "max / top"],
                [(c["name"], c["type"], f"{cols[c['name']]['missing_rate']:.1%}", cols[c["name"]].get("n_unique"),
                  cols[c["name"]].get("min", ""), (cols[c["name"]].get("quantiles") or {}).get("0.5", ""),
                  cols[c["name"]].get("max", "") if "max" in cols[c["name"]] else _top(cols[c["name"]]))
                 for c in rec["schema"]])


def _top(col: dict[str, Any]) -> str:
    top = col.get("top") or {}
    return ", ".join(str(v) for v in (top.get("values") or [])[:3])


@app.command("validate")
@handle_errors
def validate_cmd(
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    contract_file: Path | None = typer.Option(None, "--contract", help="A contract YAML instead of the stored one."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check a version against its contract; exit 1 when it breaks a rule."""
    contract = _read_contract(contract_file) if contract_file else None
    client = remote()
    with console.status(f"validating {ref}", spinner="dots") if not json_out else _nullcontext():
        if client is not None:
            with client:
                report = client.validate_dataset(ref, contract)
        else:
            from loopml.validate import validate_dataset

            report = validate_dataset(workspace(), ref, contract).to_dict()
    if json_out:
        print_json(report)
    else:
        failures = report["failures"]
        if failures:
            print_table(f"{ref}: {report['n_errors']} failed rule(s), {report['n_warnings']} warning(s)",
                        ["column", "rule", "severity", "rows", "examples", "message"],
                        [(f["column"], f["rule"], f["severity"], f["count"],
                          ", ".join(f"row {e['row']}: {e['value']!r}" for e in f["examples"]), f["message"])
                         for f in failures])
        console.print(("[green]valid[/green]: " if report["ok"] else "[red]invalid[/red]: ") + report["summary"])
    if not report["ok"]:
        raise typer.Exit(1)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _read_contract(path: Path) -> Any:
    from loopml.kernel.exceptions import ValidationError
    from loopml.validate import Contract

    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read the contract file: {exc.strerror}", field="contract", rule="file") from exc
    return Contract.from_yaml(text)


@app.command("contract")
@handle_errors
def contract_cmd(
    name: str = typer.Argument(..., help="Dataset name."),
    edit: Path | None = typer.Option(None, "--edit", help="Replace the contract with this YAML file."),
    show: bool = typer.Option(False, "--show", help="Print the contract as YAML (the default)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show a dataset's contract as YAML, or replace it from a file (audited)."""
    from loopml.validate import Contract, get_contract, set_contract

    given = _read_contract(edit) if edit else None
    reason = f"edited from {edit}"
    client = remote()
    if client is not None:
        with client:
            data = client.set_contract(name, given, reason=reason) if given else client.get_contract(name)
        contract = Contract.from_dict(data)
    else:
        ws = workspace()
        contract = set_contract(ws, name, given, reason=reason) if given else get_contract(ws, name)
    if json_out:
        print_json(contract.to_dict())
    elif edit and not show:
        console.print(f"contract of [bold]{name}[/bold] replaced from {edit}")
    else:
        typer.echo(contract.to_yaml(), nl=False)


@app.command("profile")
@handle_errors
def profile_cmd(
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    output: Path | None = typer.Option(None, "--output", "-o", help="HTML file to write (default: NAME-vV.profile.html)."),
    json_out: bool = typer.Option(False, "--json", help="Print the profile JSON instead of writing HTML."),
) -> None:
    """A self-contained HTML profile: warnings first, then distributions, missing values, outliers."""
    from loopml.validate import profile_page, profile_summary

    client = remote()
    if json_out:
        if client is not None:
            with client:
                print_json(client.dataset_profile(ref))
        else:
            print_json(profile_summary(workspace(), ref))
        return
    with console.status(f"profiling {ref}", spinner="dots"):
        if client is not None:
            with client:
                filename, html = client.dataset_profile_html(ref)
        else:
            stem, html = profile_page(workspace(), ref)
            filename = f"{stem}.profile.html"
    path = output or Path(filename)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        from loopml.kernel.exceptions import DataError

        raise DataError(f"{path}: cannot write the report: {exc.strerror}") from exc
    console.print(f"wrote {path} ({len(html) // 1024} KB)")
