"""``loopml quickstart``: the continuous-training loop on real data, in one command."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from loopml.cli._common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("quickstart")
    @handle_errors
    def quickstart(
        directory: Path = typer.Option(Path("."), "--dir", help="Where the workspace goes."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a workspace, ingest real weather data, train, evaluate, gate and register a champion."""
        from loopml.recipes import prepare_quickstart, run_recipe
        from loopml.workspace import init_workspace

        started = time.perf_counter()
        ws = init_workspace(directory)
        recipe = prepare_quickstart(ws.root)
        if not json_out:
            console.print(f"workspace: [bold]{ws.dir}[/bold]")
            console.print(f"recipe:    [bold]{recipe}[/bold] (Seattle weather 2012-2014: will it rain tomorrow?)")
        result = run_recipe(ws, recipe, progress=not json_out)
        if json_out:
            print_json({**result.to_dict(), "workspace": str(ws.dir), "recipe": str(recipe)})
            return
        from loopml.cli._recipe_view import show_recipe_result

        show_recipe_result(result)
        console.print(f"done in {time.perf_counter() - started:.1f} s. Next: [bold]loopml runs list[/bold], "
                      "[bold]loopml models show rain-tomorrow@champion[/bold], "
                      "[bold]loopml lineage model:rain-tomorrow@champion --upstream[/bold]")
