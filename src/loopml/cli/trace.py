"""``loopml trace REQUEST_ID``: everything behind one prediction (or ``--dataset REF``: everything downstream).

With ``LOOPML_SERVER_URL`` set the trace comes over HTTP (JSON for the table, the server's DOT or Mermaid text).
"""

from __future__ import annotations

import typer

from loopml.cli._common import (
    console,
    handle_errors,
    print_json,
    print_table,
    remote,
    workspace,
)
from loopml.kernel.exceptions import ValidationError

_FORMATS = ("table", "json", "dot", "mermaid")


def register(app: typer.Typer) -> None:
    """Add the top-level ``trace`` command."""

    @app.command("trace")
    @handle_errors
    def trace(
        request_id: str = typer.Argument(None, help="A request id from the prediction log."),
        endpoint: str = typer.Option(None, "--endpoint", help="The endpoint that logged it (faster; default: search all)."),
        dataset: str = typer.Option(None, "--dataset", help="Trace forward from a dataset version NAME@VERSION instead."),
        format: str = typer.Option("table", "--format", help="table | json | dot | mermaid"),
        json_out: bool = typer.Option(False, "--json", help="Same as --format json."),
    ) -> None:
        """From a prediction: version, run, code, data, gates, approvals, rollout. Or downstream of a dataset."""
        fmt = "json" if json_out else format
        if fmt not in _FORMATS:
            raise ValidationError(f"format {format!r} is unknown; allowed: {', '.join(_FORMATS)}",
                                  field="format", rule="enum")
        if (request_id is None) == (dataset is None):
            raise ValidationError("give a REQUEST_ID or --dataset NAME@VERSION (one of them)",
                                  field="request_id", rule="required")
        client = remote()
        if client is not None:
            wire = "json" if fmt == "table" else fmt
            with client:
                found = (client.trace_dataset(dataset, format=wire) if dataset
                         else client.trace_request(request_id, endpoint=endpoint, format=wire))
        else:
            from loopml.governance.trace import trace_dataset, trace_request

            ws = workspace()
            result = trace_dataset(ws, dataset) if dataset else trace_request(ws, request_id, endpoint=endpoint)
            found = {"json": result.to_dict, "table": result.to_dict, "dot": result.to_dot,
                     "mermaid": result.to_mermaid}[fmt]()
        if fmt == "json":
            print_json(found)
        elif fmt in ("dot", "mermaid"):
            typer.echo(found, nl=False)
        elif dataset:
            s = found["summary"]
            rows = [("models", ", ".join(s["models"])), ("endpoints", ", ".join(s["endpoints"])),
                    ("rollouts", ", ".join(s["rollouts"])), ("prediction batches", ", ".join(s["prediction_batches"]))]
            rows += [("predictions", f"{w['predictions']} by {w['model_version']} on {w['endpoint']}")
                     for w in s["prediction_windows"]]
            print_table(f"downstream of {s['dataset_version']}", ["what", "which"], rows)
        else:
            s = found["summary"]
            run = s["run"] or {}
            rollout = s["rollout"] or {}
            approvals = "; ".join(
                f"#{a['id']} {a['status']} by {', '.join(d['actor'] for d in a['decisions'] if d['decision'] == 'approve') or '-'}"
                for a in s["approvals"]) or "-"
            print_table(f"trace of request {s['request_id']}", ["what", "value"], [
                ("endpoint", s["endpoint"]), ("time", s["prediction"]["ts"]),
                ("model version", s["model_version"]["ref"]), ("author", s["model_version"]["created_by"]),
                ("run", f"{run.get('id', '-')} {run.get('params', '')}"),
                ("code", f"{s['code']['git_commit'] or '-'}" + (" (dirty)" if s["code"]["git_dirty"] else "")),
                ("datasets", ", ".join(f"{d['ref']} ({d['digest'][:12]})" for d in s["datasets"]) or "-"),
                ("gates", "passed" if s["gates"]["passed"] else str(s["gates"]["passed"])),
                ("approvals", approvals),
                ("rollout", f"{rollout.get('id', '-')} {rollout.get('strategy', '')} by {rollout.get('created_by', '-')}"),
            ])
            console.print("export: --format json | dot | mermaid")
