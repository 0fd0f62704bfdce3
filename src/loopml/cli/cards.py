"""``loopml models card REF``: a model version's card as Markdown or self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import console, handle_errors, print_json, workspace
from loopml.kernel.exceptions import ValidationError


def register_card(app: typer.Typer) -> None:
    """Add ``card`` to the ``models`` group."""

    @app.command("card")
    @handle_errors
    def card(
        ref: str = typer.Argument(..., help="NAME/VERSION or NAME@ALIAS"),
        format: str = typer.Option("md", "--format", help="md | html"),
        output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
        set_: list[str] = typer.Option([], "--set", help="owner=... | intended_use=... | limitations=... (repeatable)"),
        json_out: bool = typer.Option(False, "--json", help="Print the card's data as JSON."),
    ) -> None:
        """Render a model version's card (intended use, data, evaluation, fairness, gates, approvals, deployments, monitoring)."""
        from loopml.governance.model_card import model_card, set_card_fields

        if format not in ("md", "html"):
            raise ValidationError(f"format {format!r} is unknown; allowed: md, html", field="format", rule="enum")
        fields: dict[str, str | None] = {}
        for item in set_:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(f"--set {item!r} must read FIELD=VALUE", field="set", rule="format")
            fields[key.strip()] = value or None
        ws = workspace()
        found = set_card_fields(ws, ref, **fields) if fields else model_card(ws, ref)
        if json_out:
            print_json(found.to_dict())
            return
        text = found.to_html() if format == "html" else found.to_markdown()
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text, encoding="utf-8")
        console.print(f"model card of {found.data['model']['ref']} written to {output}")
