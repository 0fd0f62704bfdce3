"""``loopml rollout status | promote | rollback | pause | resume | history | analyze | who``.

A thin face over ``loopml.deploy`` (the rollout state), ``loopml.rollout``
(the online analysis) and ``loopml.predictions`` (which version answered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from loopml.cli._common import (
    console,
    handle_errors,
    print_json,
    print_table,
    workspace,
)

app = typer.Typer(help="Rollouts: status, promote, roll back, pause, history; which version answered.",
                  no_args_is_help=True)

_STYLE = {"ok": "green", "better": "green", "breach": "red", "insufficient": "yellow",
          "rollback": "red", "promote": "green", "advance": "green", "hold": "yellow",
          "running": "yellow", "paused": "dim", "promoted": "green", "rolled_back": "red"}


def _styled(text: str) -> str:
    style = _STYLE.get(text)
    return f"[{style}]{text}[/{style}]" if style else text


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _routes(policy: dict[str, Any]) -> str:
    parts = [f"v{r['version']} {r['weight']:.0%} ({r['role']})" for r in policy.get("routes", []) if r["weight"] > 0]
    parts += [f"v{v} standby" for v in policy.get("standby", [])]
    parts += [f"v{v} shadow" for v in policy.get("shadow", [])]
    return ", ".join(parts) + (" · sticky" if policy.get("sticky") else "")


def _print_rollout(r: Any) -> None:
    console.print(f"rollout [bold]{r.id}[/bold] ({r.strategy}): v{r.baseline_version} → v{r.candidate_version} · "
                  f"{_styled(r.status)} · step {r.step} ({r.candidate_weight:.0%}) since {r.step_started_at:%Y-%m-%d %H:%M:%S}"
                  + (f" · override: {r.override_reason}" if r.override_reason else ""), highlight=False)


def _print_evidence(entry: dict[str, Any]) -> None:
    console.print(f"last analysis {entry.get('ts', '-')}: {_styled(str(entry.get('decision', '-')))} — "
                  f"{entry.get('reason', '')}", highlight=False, soft_wrap=True)
    signals = entry.get("signals") or []
    if not signals:
        return
    table = Table(show_lines=False)
    for col in ("signal", "status", "baseline", "candidate", "p", "effect", "n (b/c)", "detail"):
        table.add_column(col, overflow="fold")
    for s in signals:
        table.add_row(s["name"], _styled(s["status"]), _num(s.get("baseline")), _num(s.get("candidate")),
                      _num(s.get("p_value")), _num(s.get("effect")), f"{s.get('n_baseline')}/{s.get('n_candidate')}",
                      s.get("detail", ""))
    console.print(table)


@app.command("status")
@handle_errors
def status(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """The endpoint's traffic policy, its latest rollout, step and last analysis."""
    from loopml.deploy import get_endpoint, get_rollout

    ws = workspace()
    ep = get_endpoint(ws, endpoint)
    r = get_rollout(ws, endpoint)
    if json_out:
        print_json({"endpoint": ep.to_dict(), "rollout": r.to_dict() if r else None})
        return
    console.print(f"endpoint [bold]{ep.name}[/bold] ({ep.model_name}) revision {ep.revision}: {_routes(ep.policy)}",
                  highlight=False)
    if r is None:
        console.print("no rollout yet")
        return
    _print_rollout(r)
    analysed = [e for e in r.evidence if "signals" in e]
    if analysed:
        _print_evidence(analysed[-1])
    else:
        console.print("not analysed yet")


def _done(record: Any, json_out: bool, verb: str) -> None:
    if json_out:
        print_json(record.to_dict())
    else:
        console.print(f"rollout {record.id} on [bold]{record.endpoint}[/bold] {verb}: {_styled(record.status)}",
                      highlight=False)


@app.command("promote")
@handle_errors
def promote_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """All traffic and the alias (champion) to the candidate now; the baseline stays warm."""
    from loopml.deploy import promote

    _done(promote(workspace(), endpoint, reason=reason or "promoted by hand"), json_out, "promoted")


@app.command("rollback")
@handle_errors
def rollback_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(..., "--reason", help="Why (audited; required)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """All traffic (and the alias) back to the baseline now."""
    from loopml.deploy import rollback

    _done(rollback(workspace(), endpoint, reason=reason), json_out, "rolled back")


@app.command("pause")
@handle_errors
def pause_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Freeze the rollout: traffic stays where it is, the controller stops deciding."""
    from loopml.deploy import pause

    _done(pause(workspace(), endpoint, reason=reason), json_out, "paused")


@app.command("resume")
@handle_errors
def resume_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Let the controller decide again (the step's hold time restarts)."""
    from loopml.deploy import resume

    _done(resume(workspace(), endpoint, reason=reason), json_out, "resumed")


@app.command("history")
@handle_errors
def history(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    since: str = typer.Option(None, "--since", help="ISO time or an age such as 1h, 2d."),
    until: str = typer.Option(None, "--until", help="ISO time or an age (default: now)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Every traffic change of the endpoint, and which versions served it in the window."""
    from loopml.deploy import traffic_history, versions_between
    from loopml.kernel.types import utcnow
    from loopml.predictions import parse_time

    ws = workspace()
    changes = traffic_history(ws, endpoint)
    lo = parse_time(since, "since")
    hi = parse_time(until, "until") or utcnow()
    start = lo or (changes[0].ts if changes else hi)
    served = versions_between(ws, endpoint, start, hi)
    # The change in force at ``start`` belongs to the window too.
    shown = [c for i, c in enumerate(changes)
             if c.ts <= hi and (i + 1 == len(changes) or changes[i + 1].ts >= start)]
    if json_out:
        print_json({"endpoint": endpoint, "since": start, "until": hi, "versions_served": served,
                    "changes": [c.to_dict() for c in shown]})
        return
    print_table(f"traffic of {endpoint}", ["revision", "time", "actor", "rollout", "policy", "reason"],
                [(c.revision, f"{c.ts:%Y-%m-%d %H:%M:%S}", c.actor, c.rollout_id or "-", _routes(c.policy),
                  c.reason or "") for c in shown])
    console.print(f"versions that served {endpoint} between {start:%Y-%m-%d %H:%M:%S} and {hi:%Y-%m-%d %H:%M:%S}: "
                  f"[bold]{', '.join(f'v{v}' for v in served) or 'none'}[/bold]", highlight=False)


@app.command("analyze")
@handle_errors
def analyze(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Run the online analysis of the endpoint's rollout once, now, and apply its decision."""
    from loopml.deploy import get_rollout
    from loopml.kernel.exceptions import DeploymentError
    from loopml.rollout import analyze_rollout

    ws = workspace()
    r = get_rollout(ws, endpoint)
    if r is None or r.status != "running":
        state = "no rollout" if r is None else f"rollout {r.id} is {r.status}"
        raise DeploymentError(f"endpoint {endpoint!r} has nothing to analyse: {state}")
    decision = analyze_rollout(ws, r, force=True)
    if json_out:
        print_json(decision.to_dict())
        return
    _print_evidence({"ts": "now", "decision": decision.action, "reason": decision.reason,
                     "signals": decision.signals})


def _answers(ws: Any, endpoint: str, request_id: str) -> list[dict[str, Any]]:
    from loopml.predictions import open_view

    con = open_view(ws, endpoint)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE predictions").fetchall()]
        want = [c for c in ("request_id", "row", "ts", "model_name", "model_version", "status", "latency_ms",
                            "prediction", "error") if c in cols]
        rows = con.sql(f"SELECT {', '.join(want)} FROM predictions WHERE request_id = $rid ORDER BY row",
                       params={"rid": request_id}).to_arrow_table().to_pylist()  # arrow: no pytz for timestamptz
    finally:
        con.close()
    return [{"endpoint": endpoint, **row} for row in rows]


@app.command("who")
@handle_errors
def who(
    request_id: str = typer.Argument(..., help="The request id (X-Request-ID, or the one the server returned)."),
    endpoint: str = typer.Option(None, "--endpoint", "-e", help="Endpoint (default: search every logged one)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Which model version answered a request (from the prediction log), and any shadow that scored it."""
    from loopml.deploy import shadow_endpoint_name
    from loopml.kernel.exceptions import NotFoundError
    from loopml.predictions import list_endpoints

    ws = workspace()
    logged = list_endpoints(ws)
    if endpoint is not None:
        if endpoint not in logged:
            raise NotFoundError(f"endpoint {endpoint!r} has no logged predictions; logged: "
                                f"{', '.join(e for e in logged if not e.endswith('.shadow')) or '(none)'}")
        names = [endpoint]
        if shadow_endpoint_name(endpoint) in logged:
            names.append(shadow_endpoint_name(endpoint))
    else:
        names = logged
    found = [a for name in names for a in _answers(ws, name, request_id)]
    answered = [a for a in found if not a["endpoint"].endswith(".shadow")]
    if not answered:
        where = f"endpoint {endpoint!r}" if endpoint else "any endpoint"
        raise NotFoundError(f"request {request_id!r} is not in the prediction log of {where}")
    if json_out:
        print_json({"request_id": request_id, "answered_by": answered,
                    "shadows": [a for a in found if a["endpoint"].endswith(".shadow")]})
        return
    print_table(f"request {request_id}", ["endpoint", "row", "time", "model", "status", "latency ms", "prediction"],
                [(a["endpoint"], a.get("row", 0), f"{a['ts']:%Y-%m-%d %H:%M:%S.%f}"[:-3]
                  if isinstance(a.get("ts"), datetime) else a.get("ts"),
                  f"{a.get('model_name')}/{a.get('model_version')}", a.get("status"), _num(a.get("latency_ms")),
                  a.get("prediction")) for a in found])
