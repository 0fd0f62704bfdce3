"""``loopml deploy ENDPOINT MODEL_REF --strategy ...``: start a rollout (or a YAML spec of one).

A thin face over :func:`loopml.deploy.deploy`: options that are not given are
not sent, so each strategy's documented defaults (``loopml.deploy.DEFAULTS``)
apply, and an option a strategy does not take is an error naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from loopml.cli._common import (
    console,
    handle_errors,
    print_json,
    print_table,
    remote,
    workspace,
)

__all__ = ["register"]

_SPEC_KEYS = {"endpoint", "model", "model_ref", "strategy", "override_reason", "options"}


def _floats(text: str, field: str) -> list[float]:
    from loopml.kernel.exceptions import ValidationError

    try:
        return [float(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise ValidationError(f"--{field} must be numbers separated by commas, got {text!r}",
                              field=field, rule="type") from None


def _setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as JSON when it parses (numbers, true/false, lists), else text."""
    from loopml.kernel.exceptions import ValidationError

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValidationError(f"--set takes KEY=VALUE, got {text!r}", field="set", rule="format")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def read_spec(path: Path) -> dict[str, Any]:
    """A deployment spec (YAML): ``endpoint``, ``model``, ``strategy``, ``override_reason``, ``options``."""
    import yaml

    from loopml.kernel.exceptions import ValidationError

    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read deployment spec {str(path)!r}: {exc.strerror}", field="file",
                              rule="exists") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"deployment spec {str(path)!r} is not valid YAML: {exc}", field="file",
                              rule="yaml") from None
    if not isinstance(spec, dict):
        raise ValidationError(f"deployment spec {str(path)!r} must be a mapping", field="file", rule="type")
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValidationError(f"deployment spec {str(path)!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(_SPEC_KEYS))}", field=min(unknown), rule="keys")
    if spec.get("options") is not None and not isinstance(spec["options"], dict):
        raise ValidationError("deployment spec: 'options' must be a mapping", field="options", rule="type")
    return spec


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    @handle_errors
    def deploy_cmd(
        endpoint: str = typer.Argument(None, help="Endpoint name (created on the first deploy)."),
        model_ref: str = typer.Argument(None, help="Model reference: NAME/VERSION or NAME@ALIAS."),
        strategy: str = typer.Option(None, "--strategy", "-s",
                                     help="direct | canary | blue-green | shadow | ab (default: direct)."),
        steps: str = typer.Option(None, "--steps", help="Canary weights, e.g. 0.05,0.25,0.5,1."),
        min_requests: int = typer.Option(None, "--min-requests", help="Candidate requests per step before judging."),
        min_seconds: float = typer.Option(None, "--min-seconds", help="Minimum hold of each step."),
        split: float = typer.Option(None, "--split", help="A/B: the candidate's share (0-1)."),
        shadow_fraction: float = typer.Option(None, "--shadow-fraction",
                                              help="Shadow: the share of requests it scores (0-1]; default all."),
        metric: str = typer.Option(None, "--metric", help="Metric judged on late labels (accuracy, mae)."),
        settings: list[str] = typer.Option(None, "--set", help="Any other option as KEY=VALUE (e.g. interval_s=5)."),
        override_reason: str = typer.Option(None, "--override-reason",
                                            help="Give traffic to a version whose gates did not pass (audited)."),
        file: Path = typer.Option(None, "--file", "-f", help="A YAML deployment spec instead of arguments."),
        json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    ) -> None:
        """Send an endpoint's traffic to a model version under a rollout strategy."""
        from loopml.deploy import deploy, get_endpoint
        from loopml.kernel.exceptions import ValidationError

        options: dict[str, Any] = {}
        if file is not None:
            spec = read_spec(file)
            endpoint = endpoint or spec.get("endpoint")
            model_ref = model_ref or spec.get("model") or spec.get("model_ref")
            strategy = strategy or spec.get("strategy")
            override_reason = override_reason or spec.get("override_reason")
            options.update(spec.get("options") or {})
        if not endpoint or not model_ref:
            raise ValidationError("deploy needs an ENDPOINT and a MODEL_REF (arguments or --file)",
                                  field="endpoint" if not endpoint else "model", rule="required")
        given = {"steps": _floats(steps, "steps") if steps else None, "min_requests": min_requests,
                 "min_seconds": min_seconds, "split": split, "metric": metric, "shadow_fraction": shadow_fraction}
        options.update({k: v for k, v in given.items() if v is not None})
        options.update(dict(_setting(s) for s in settings or []))
        client = remote()
        if client is not None:  # the server deploys as the token's user (approval policies apply there)
            with client:
                record = client.deploy(endpoint, model_ref, strategy=strategy or "direct",
                                       override_reason=override_reason, **options)
                policy = client.get_endpoint(endpoint)
        else:
            ws = workspace()
            record = deploy(ws, endpoint, model_ref, strategy=strategy or "direct", override_reason=override_reason,
                            **options).to_dict()
            policy = get_endpoint(ws, endpoint).to_dict()
        if json_out:
            print_json({"rollout": record, "endpoint": policy})
            return
        console.print(f"rollout [bold]{record['id']}[/bold]: {record['strategy']} of {record['model_name']}/"
                      f"{record['candidate_version']} on [bold]{endpoint}[/bold] ({record['status']}); "
                      f"policy revision {policy['revision']}", highlight=False)
        routes = policy["policy"]
        print_table(None, ["version", "weight", "role"],
                    [(r["version"], f"{r['weight']:.0%}", r["role"]) for r in routes["routes"]]
                    + [(v, "-", "standby") for v in routes.get("standby", [])]
                    + [(v, f"{routes.get('shadow_fraction', 1.0):.0%} copied", "shadow") for v in routes.get("shadow", [])])
