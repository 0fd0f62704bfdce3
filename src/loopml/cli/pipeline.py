"""``loopml run RECIPE.yaml``: run a continuous-training recipe."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import handle_errors, print_json, quiet_gc, workspace
from loopml.kernel.exceptions import SpecError


def _apply_overrides(data: dict, overrides: list[str]) -> dict:
    import yaml

    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--param {item!r}: use KEY=VALUE with a dotted key, e.g. train.params.max_iter=50",
                            field="--param", rule="format")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"--param {key}: '{part}' is not a mapping in the recipe", field=key, rule="path")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def register(app: typer.Typer) -> None:
    @app.command("run")
    @handle_errors
    def run(
        recipe: Path = typer.Argument(..., help="A recipe YAML file."),
        param: list[str] = typer.Option([], "--param", "-p", help="Override a key: train.params.max_iter=50"),
        executor: str = typer.Option(None, "--executor", help="inprocess | process | ray | ray://HOST:PORT"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run a continuous-training recipe (ingest → validate → split → train → evaluate → gates → register)."""
        with quiet_gc():  # the store, the ORM and the recipe machinery: long-lived objects
            from loopml.recipes import load_spec, parse_spec, run_recipe

        spec = load_spec(recipe)
        if param:
            data = _apply_overrides(spec.model_dump(by_alias=True), param)
            spec = parse_spec(data, origin=recipe.name)
        ws = workspace()
        result = run_recipe(ws, spec, executor=executor, progress=not json_out)
        if json_out:
            print_json(result)
        else:
            from loopml.cli._recipe_view import show_recipe_result

            show_recipe_result(result)
