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
        loop: bool = typer.Option(True, "--loop/--no-loop",
                                  help="Then play the loop: serve, replay traffic, monitor, alert, retrain."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Train a champion on real weather data, then serve it, detect drift, and retrain: the whole loop."""
        from loopml.recipes import prepare_quickstart, run_recipe
        from loopml.workspace import init_workspace

        started = time.perf_counter()
        ws = init_workspace(directory)
        recipe = prepare_quickstart(ws.root)
        if not json_out:
            console.print(f"workspace: [bold]{ws.dir}[/bold]")
            console.print(f"recipe:    [bold]{recipe}[/bold] (Seattle weather 2012-2014: will it rain tomorrow?)")
        result = run_recipe(ws, recipe, progress=not json_out)
        if not json_out:
            from loopml.cli._recipe_view import show_recipe_result

            show_recipe_result(result.to_dict())
        story = None
        if loop and result.model_version and result.model_version.get("gates_passed"):
            from loopml.scheduler import play_loop

            if not json_out:
                console.rule("the loop: serve → monitor → alert → retrain")
            from rich.markup import escape

            say = (lambda _m: None) if json_out else (lambda m: console.print(f"• {escape(m)}"))
            story = play_loop(ws, recipe, say=say)
        if json_out:
            print_json({**result.to_dict(), "loop": story.to_dict() if story else None,
                        "workspace": str(ws.dir), "recipe": str(recipe)})
            return
        if story is not None:
            from loopml.cli._recipe_view import show_loop_story

            show_loop_story(story)
        console.print(f"done in {time.perf_counter() - started:.1f} s. Next: [bold]loopml runs list[/bold], "
                      "[bold]loopml models show rain-tomorrow@champion[/bold], "
                      "[bold]loopml lineage model:rain-tomorrow@challenger --upstream[/bold]")
