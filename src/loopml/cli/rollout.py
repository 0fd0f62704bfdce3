"""``loopml rollout status | promote | rollback | pause | resume | history | analyze | who``.

A thin face over ``loopml.deploy`` (the rollout state) and ``loopml.rollout``
(the online analysis; which versions served when, which version answered).
With ``LOOPML_SERVER_URL`` and ``LOOPML_TOKEN`` set, every verb goes to the
server's routes as the token's user; the printers take the records'
``to_dict()`` shape, which is also what the server sends.
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
    remote,
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


def _time(value: datetime | str) -> datetime:
    """A record's time (a datetime) or its JSON (ISO text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _print_rollout(r: dict[str, Any]) -> None:
    console.print(f"rollout [bold]{r['id']}[/bold] ({r['strategy']}): v{r['baseline_version']} → "
                  f"v{r['candidate_version']} · {_styled(r['status'])} · step {r['step']} ({r['candidate_weight']:.0%}) "
                  f"since {_time(r['step_started_at']):%Y-%m-%d %H:%M:%S}"
                  + (f" · override: {r['override_reason']}" if r["override_reason"] else ""), highlight=False)


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
    client = remote()
    if client is not None:
        with client:
            ep, r = client.get_endpoint(endpoint), client.get_rollout(endpoint)
    else:
        from loopml.deploy import get_endpoint, get_rollout

        ws = workspace()
        ep = get_endpoint(ws, endpoint).to_dict()
        rollout = get_rollout(ws, endpoint)
        r = rollout.to_dict() if rollout else None
    if json_out:
        print_json({"endpoint": ep, "rollout": r})
        return
    console.print(f"endpoint [bold]{ep['name']}[/bold] ({ep['model_name']}) revision {ep['revision']}: "
                  f"{_routes(ep['policy'])}", highlight=False)
    if r is None:
        console.print("no rollout yet")
        return
    _print_rollout(r)
    analysed = [e for e in r["evidence"] if "signals" in e]
    if analysed:
        _print_evidence(analysed[-1])
    else:
        console.print("not analysed yet")


def _done(record: Any, json_out: bool, verb: str) -> None:
    data = record if isinstance(record, dict) else record.to_dict()
    if json_out:
        print_json(data)
    else:
        console.print(f"rollout {data['id']} on [bold]{data['endpoint']}[/bold] {verb}: {_styled(data['status'])}",
                      highlight=False)


def _act(verb: str, endpoint: str, reason: str | None) -> Any:
    """``promote | rollback | pause | resume`` on the server (remote mode) or the workspace."""
    client = remote()
    if client is not None:
        with client:
            return getattr(client, verb)(endpoint, reason=reason)
    import loopml.deploy as deploy_service

    return getattr(deploy_service, verb)(workspace(), endpoint, reason=reason)


@app.command("promote")
@handle_errors
def promote_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """All traffic and the alias (champion) to the candidate now; the baseline stays warm."""
    _done(_act("promote", endpoint, reason or "promoted by hand"), json_out, "promoted")


@app.command("rollback")
@handle_errors
def rollback_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(..., "--reason", help="Why (audited; required)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """All traffic (and the alias) back to the baseline now."""
    _done(_act("rollback", endpoint, reason), json_out, "rolled back")


@app.command("pause")
@handle_errors
def pause_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Freeze the rollout: traffic stays where it is, the controller stops deciding."""
    _done(_act("pause", endpoint, reason), json_out, "paused")


@app.command("resume")
@handle_errors
def resume_cmd(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option(None, "--reason", help="Why (audited)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Let the controller decide again (the step's hold time restarts)."""
    _done(_act("resume", endpoint, reason), json_out, "resumed")


@app.command("history")
@handle_errors
def history(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    since: str = typer.Option(None, "--since", help="ISO time or an age such as 1h, 2d."),
    until: str = typer.Option(None, "--until", help="ISO time or an age (default: now)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Every traffic change of the endpoint, and which versions served it in the window."""
    client = remote()
    if client is not None:
        with client:
            served = client.served_between(endpoint, since, until)
    else:
        from loopml.rollout import served_between

        served = served_between(workspace(), endpoint, since, until).to_dict()
    if json_out:
        print_json(served)
        return
    start, end = _time(served["since"]), _time(served["until"])
    print_table(f"traffic of {endpoint}", ["revision", "time", "actor", "rollout", "policy", "reason"],
                [(c["revision"], f"{_time(c['ts']):%Y-%m-%d %H:%M:%S}", c["actor"], c["rollout_id"] or "-",
                  _routes(c["policy"]), c["reason"] or "") for c in served["changes"]])
    versions = ", ".join(f"v{v}" for v in served["versions_served"]) or "none"
    console.print(f"versions that served {endpoint} between {start:%Y-%m-%d %H:%M:%S} and {end:%Y-%m-%d %H:%M:%S}: "
                  f"[bold]{versions}[/bold]", highlight=False)


@app.command("analyze")
@handle_errors
def analyze(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Run the online analysis of the endpoint's rollout once, now, and apply its decision."""
    client = remote()
    if client is not None:
        with client:
            decision = client.analyze_rollout(endpoint)
    else:
        from loopml.rollout import analyze_endpoint

        decision = analyze_endpoint(workspace(), endpoint).to_dict()
    if json_out:
        print_json(decision)
        return
    _print_evidence({"ts": "now", "decision": decision["action"], "reason": decision["reason"],
                     "signals": decision["signals"]})


@app.command("who")
@handle_errors
def who(
    request_id: str = typer.Argument(..., help="The request id (X-Request-ID, or the one the server returned)."),
    endpoint: str = typer.Option(None, "--endpoint", "-e", help="Endpoint (default: search every logged one)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Which model version answered a request (from the prediction log), and any shadow that scored it."""
    client = remote()
    if client is not None:
        with client:
            found = client.who_answered(request_id, endpoint=endpoint)
    else:
        from loopml.rollout import who_answered

        found = [a.to_dict() for a in who_answered(workspace(), request_id, endpoint=endpoint)]
    if json_out:
        print_json({"request_id": request_id, "answered_by": [a for a in found if not a["shadow"]],
                    "shadows": [a for a in found if a["shadow"]]})
        return
    print_table(f"request {request_id}", ["endpoint", "row", "time", "model", "status", "latency ms", "prediction"],
                [(a["endpoint"], a["row"], f"{_time(a['ts']):%Y-%m-%d %H:%M:%S.%f}"[:-3] if a["ts"] else None,
                  f"{a['model_name']}/{a['model_version']}", a["status"], _num(a["latency_ms"]), a["prediction"])
                 for a in found])
