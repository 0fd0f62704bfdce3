"""``loopml models card REF``: a model version's card as Markdown or self-contained HTML.

With ``LOOPML_SERVER_URL`` set the card's data (and any ``--set`` edit) goes over HTTP; it is rendered here
with the same templates, so the text is the same as from the store.
"""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import console, handle_errors, print_json, remote, workspace
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
        from loopml.governance.model_card import ModelCard, model_card, set_card_fields

        if format not in ("md", "html"):
            raise ValidationError(f"format {format!r} is unknown; allowed: md, html", field="format", rule="enum")
        fields: dict[str, str | None] = {}
        for item in set_:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(f"--set {item!r} must read FIELD=VALUE", field="set", rule="format")
            fields[key.strip()] = value or None
        client = remote()
        if client is not None:
            with client:
                found = ModelCard(client.set_card_fields(ref, **fields) if fields else client.model_card(ref))
        else:
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
