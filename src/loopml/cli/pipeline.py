"""``loopml run RECIPE.yaml``: run a continuous-training recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from loopml.cli._common import console, handle_errors, print_json, quiet_gc, remote, workspace
from loopml.kernel.exceptions import SpecError, ValidationError


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
        here: bool = typer.Option(False, "--here", help="With LOOPML_SERVER_URL: run on this machine, on the "
                                                        "shared store, instead of on the server's scheduler."),
        detach: bool = typer.Option(False, "--detach", help="With a server: queue the run and return at once."),
        reason: str = typer.Option(None, "--reason", help="With a server: why (kept with the run request)."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run a continuous-training recipe (ingest → validate → split → train → evaluate → gates → register).

        With LOOPML_SERVER_URL the server's scheduler runs it as you; a local data file is uploaded first.
        """
        with quiet_gc():  # the store, the ORM and the recipe machinery: long-lived objects
            from loopml.recipes import load_spec, parse_spec, run_recipe

        spec = load_spec(recipe)
        if param:
            data = _apply_overrides(spec.model_dump(by_alias=True), param)
            spec = parse_spec(data, origin=recipe.name)
        client = None if here else remote()
        if client is not None:
            from loopml.recipes import recipe_pipeline

            _run_on_server(client, spec.model_dump(by_alias=True, mode="json"), executor=executor, detach=detach,
                           reason=reason, json_out=json_out, pipeline=recipe_pipeline(spec))
            return
        ws = workspace()
        result = run_recipe(ws, spec, executor=executor, progress=not json_out)
        if json_out:
            print_json(result)
        else:
            from loopml.cli._recipe_view import show_recipe_result

            show_recipe_result(result.to_dict())


def _run_on_server(client: Any, spec: dict[str, Any], *, executor: str | None, detach: bool, reason: str | None,
                   json_out: bool, pipeline: Any) -> None:
    from loopml.cli._remote import wait_for_run

    if executor:
        raise ValidationError("--executor: the server's scheduler runs the recipe with its own executor "
                              "(LOOPML_EXECUTOR where it runs); add --here to run it on this machine",
                              field="--executor", rule="remote")
    with client:
        request = client.submit_run(spec, reason=reason)
        if detach:
            if json_out:
                print_json(request)
            else:
                console.print(f"run request {request['id']}: {request['status']} "
                              f"(follow it with: loopml triggers requests)")
            return
        ended = wait_for_run(client, request, show=not json_out, pipeline=pipeline)
    if json_out:
        print_json(ended["result"])
    else:
        from loopml.cli._recipe_view import show_recipe_result

        show_recipe_result(ended["result"])
