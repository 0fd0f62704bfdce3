"""``loopml lineage OBJECT``: where an object came from and where it went."""

from __future__ import annotations

import sys

import typer

from loopml.cli._common import console, handle_errors, print_table, remote, workspace
from loopml.kernel.exceptions import ValidationError

FORMATS = ("table", "json", "dot", "mermaid")


def register(app: typer.Typer) -> None:
    @app.command("lineage")
    @handle_errors
    def lineage_cmd(
        obj: str = typer.Argument(
            ..., metavar="OBJECT",
            help="TYPE:ID, e.g. model:churn@champion, model_version:churn/3, dataset_version:weather@2, run:ID.",
        ),
        upstream: bool = typer.Option(False, "--upstream", help="Only where it came from."),
        downstream: bool = typer.Option(False, "--downstream", help="Only where it went."),
        fmt: str = typer.Option("table", "--format", "-f", help="table | json | dot | mermaid"),
        depth: int = typer.Option(50, "--depth", min=1, help="How many hops to follow."),
        json_out: bool = typer.Option(False, "--json", help="Same as --format json."),
    ) -> None:
        """The lineage graph around OBJECT (both directions unless --upstream or --downstream)."""
        from loopml.metadata.lineage import lineage

        if upstream and downstream:
            raise ValidationError("use --upstream or --downstream, not both (neither means both)",
                                  field="--upstream", rule="exclusive")
        fmt = "json" if json_out else fmt
        if fmt not in FORMATS:
            raise ValidationError(f"--format {fmt!r} is invalid: use one of {', '.join(FORMATS)}",
                                  field="--format", rule="choice")
        direction = "upstream" if upstream else "downstream" if downstream else "both"
        client = remote()
        if client is not None:  # the server's /lineage, as the token's user
            with client:
                found = client.lineage(obj, direction=direction, max_depth=depth,
                                       format="json" if fmt == "table" else fmt)
            _print_remote(found, fmt, direction)
            return
        graph = lineage(workspace(), obj, direction=direction, max_depth=depth)
        if fmt == "json":
            sys.stdout.write(graph.to_json() + "\n")
        elif fmt == "dot":
            sys.stdout.write(graph.to_dot())
        elif fmt == "mermaid":
            sys.stdout.write(graph.to_mermaid())
        else:
            labels = {n.key: f"{n.type}:{n.label}" for n in graph.nodes}
            console.print(f"[bold]{graph.root.type}:{graph.root.label}[/bold] ({direction})")
            if not graph.edges:
                console.print("no lineage recorded")
                return
            print_table(None, ["from", "relation", "to"], [
                (labels[":".join(e.src)], e.relation, labels[":".join(e.dst)]) for e in graph.edges
            ])


def _print_remote(found: object, fmt: str, direction: str) -> None:
    """What the server sent: JSON and text formats as they are, the table from the JSON graph."""
    import json

    if fmt != "table":
        sys.stdout.write((json.dumps(found, indent=2, default=str) + "\n") if fmt == "json" else str(found))
        return
    graph = found if isinstance(found, dict) else {}
    labels = {n["key"]: f"{n['type']}:{n['label']}" for n in graph.get("nodes", [])}
    console.print(f"[bold]{labels.get(graph.get('root', ''), graph.get('root'))}[/bold] ({direction})")
    if not graph.get("edges"):
        console.print("no lineage recorded")
        return
    print_table(None, ["from", "relation", "to"], [
        (labels.get(e["src"], e["src"]), e["relation"], labels.get(e["dst"], e["dst"])) for e in graph["edges"]
    ])
