"""How a recipe run is shown on the terminal (tables only; no logic)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from loopml.cli._common import console


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def show_recipe_result(d: dict[str, Any]) -> None:
    """A recipe run's steps, data, evaluation, gates and registration (``RecipeResult.to_dict()``)."""
    steps = Table(title=f"pipeline run {d['run_id']} — {d['status']}")
    for col in ("step", "status", "cache", "seconds"):
        steps.add_column(col)
    for s in d["steps"]:
        steps.add_row(s.get("name", ""), s.get("status", ""), "hit" if s.get("cache_hit") else "miss",
                      _fmt(s.get("duration_s")))
    console.print(steps)
    dv = d.get("dataset_version") or {}
    if dv:
        console.print(f"data: [bold]{dv.get('name')}@{dv.get('version')}[/bold] ({dv.get('n_rows')} rows, digest {str(dv.get('digest'))[:12]})")
    training = d.get("training") or {}
    if training.get("n_trials"):
        console.print(f"search: {training['n_trials']} trials, best validation score {_fmt(training.get('best_value'))} with {training.get('best_params')}")
    evaluation = d.get("evaluation") or {}
    overall = evaluation.get("metrics") or {}
    if overall:
        table = Table(title="evaluation on the test split")
        table.add_column("slice")
        names = list(overall)
        for n in names:
            table.add_column(n)
        table.add_row("overall", *[_fmt(overall[n]) for n in names])
        for column, slices in (evaluation.get("slices") or {}).items():
            for sl in slices:
                metrics = sl.get("metrics", {})
                label = f"{column}={sl['label']} (n={sl['n_rows']})"
                table.add_row(label, *[_fmt(metrics.get(n)) for n in names])
        console.print(table)
    gates = d.get("gate_report") or {}
    if gates:
        table = Table(title=f"gates — {'PASSED' if gates.get('passed') else 'FAILED'}")
        table.add_column("rule")
        table.add_column("outcome")
        table.add_column("detail")
        for r in gates.get("outcomes", []):
            table.add_row(str(r.get("name") or r.get("rule")), str(r["status"]), str(r.get("message", "")))
        console.print(table)
    mv = d.get("model_version") or {}
    if mv.get("registered"):
        aliases = ", ".join(mv.get("aliases") or []) or "no alias"
        console.print(f"registered: [bold]{mv['name']}/{mv['version']}[/bold] ({aliases})")
    elif mv:
        console.print("not registered: the candidate failed its gates")


def show_loop_story(story: Any) -> None:
    d = story.to_dict()
    if d.get("alerts"):
        for alert in d["alerts"]:
            console.print(f"• alert #{alert.get('alert_id')} ({alert.get('severity')}): {escape(str(alert.get('message')))}")
    console.print(f"• monitor report (HTML): [bold]{d['report_path']}[/bold]")
    if d.get("retrain_error"):
        console.print(f"[red]• retraining failed:[/red] {escape(d['retrain_error'])}")
    candidate = d.get("candidate")
    if candidate:
        gates = (d.get("gate_report") or {}).get("message", "")
        state = "registered as [bold]challenger[/bold]" if "challenger" in candidate["aliases"] else "registered, no alias"
        console.print(f"• candidate {candidate['name']}/{candidate['version']} {state}; gates vs champion: {gates}")
        console.print(f"• champion is still {d['champion']}: promote the challenger with a canary, e.g. "
                      f"[bold]loopml deploy {d['endpoint']} {candidate['name']}@challenger --strategy canary[/bold]")
