"""``loopml stream``: score a Redis Stream or MQTT topics with a registered model, until stopped.

    loopml stream churn@champion --source "redis://localhost:6379/0?stream=events&group=loopml"
    loopml stream churn@champion --source "mqtt://broker:1883/plant/+/in/#"

Every prediction goes to the workspace's prediction log (``--no-log`` to
skip); delivery is at-least-once (see ``loopml.serve.stream``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import typer
from rich.live import Live
from rich.text import Text

from loopml.cli._common import console, handle_errors, print_json, workspace
from loopml.kernel.exceptions import ValidationError

_REDIS_OPTIONS = {"stream", "group", "consumer", "claim_idle_ms", "max_deliveries", "block_ms"}
_MQTT_OPTIONS = {"client_id", "qos", "clean_session", "username", "password"}


@dataclass
class Source:
    """A parsed ``--source``: the transport, where it is, and its query options."""

    kind: str
    url: str
    host: str = "127.0.0.1"
    port: int = 0
    topic: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def parse_source(text: str) -> Source:
    """``redis://host:port/db?stream=..&group=..`` or ``mqtt://host:port/topic/filter/#?client_id=..``.

    Parsed by hand: an MQTT filter's ``#`` would be a URL fragment to urllib.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("redis", "rediss", "mqtt"):
        raise ValidationError(
            f"--source {text!r} is not supported: use redis://HOST:PORT/DB?stream=NAME&group=NAME "
            "or mqtt://HOST:PORT/TOPIC/FILTER", field="source", rule="scheme")
    rest, _, query = rest.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    netloc, _, path = rest.partition("/")
    host, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    default_port = 1883 if scheme == "mqtt" else 6379
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValidationError(f"--source {text!r}: port {port_text!r} is not a number", field="source",
                              rule="port") from None
    allowed = _MQTT_OPTIONS if scheme == "mqtt" else _REDIS_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(f"--source option {unknown[0]!r} is not known for {scheme}://; "
                              f"known: {', '.join(sorted(allowed))}", field="source", rule="option")
    if scheme == "mqtt":
        return Source("mqtt", text, host or "127.0.0.1", port, path or None, options)
    url = f"{scheme}://{netloc}/{path}" if path else f"{scheme}://{netloc}/0"
    return Source("redis", url, host or "127.0.0.1", port, None, options)


def _int(options: dict[str, str], key: str, default: int | None = None) -> int | None:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise ValidationError(f"--source option {key}={options[key]!r} is not an integer", field=key,
                              rule="type") from None


def _scorer(ws: Any, model_ref: str, src: Source, *, output: str | None, dead_letter: str | None,
            endpoint: str | None, batch_size: int, sink: Any) -> Any:
    from loopml.serve.stream import MqttScorer, RedisStreamScorer

    o = src.options
    if src.kind == "redis":
        kwargs: dict[str, Any] = {}
        for key in ("claim_idle_ms", "max_deliveries", "block_ms"):
            value = _int(o, key)
            if value is not None:
                kwargs[key] = value
        return RedisStreamScorer(
            ws, model_ref, url=src.url, stream=o.get("stream"), group=o.get("group", "loopml"),
            consumer=o.get("consumer"), output_stream=output, dead_letter_stream=dead_letter,
            batch_size=batch_size, sink=sink, endpoint_name=endpoint, **kwargs)
    clean = o.get("clean_session", "0").lower() in ("1", "true", "yes")
    return MqttScorer(
        ws, model_ref, host=src.host, port=src.port, topic_in=src.topic, topic_out=output, dead_topic=dead_letter,
        qos=_int(o, "qos", 1) or 0, client_id=o.get("client_id"), clean_session=clean,
        username=o.get("username"), password=o.get("password"), batch_size=batch_size, sink=sink,
        endpoint_name=endpoint)


def _status(counters: Any) -> Text:
    c = counters
    return Text.assemble(
        ("streaming ", "bold"), f"consumed {c.consumed:,} ({c.rate():,.1f}/s)  predicted {c.predicted:,}  ",
        (f"dead-lettered {c.dead_lettered:,}", "yellow" if c.dead_lettered else ""),
        f"  reclaimed {c.reclaimed:,}  acked {c.acked:,}",
    )


def stream(
    model_ref: str = typer.Argument(..., help="NAME@ALIAS or NAME/VERSION."),
    source: str = typer.Option(..., "--source", "-s", help="redis://HOST:PORT/DB?stream=..&group=.. or mqtt://HOST:PORT/TOPIC/#"),
    output: str = typer.Option(None, "--output", "-o", help="Output stream (Redis) or topic prefix (MQTT)."),
    dead_letter: str = typer.Option(None, "--dead-letter", help="Dead-letter stream (Redis) or topic (MQTT)."),
    endpoint: str = typer.Option(None, "--endpoint", help="Endpoint name in the prediction log (default: model name)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Most messages per model call."),
    max_messages: int = typer.Option(None, "--max-messages", help="Stop after this many messages (tests, demos)."),
    timeout: float = typer.Option(None, "--timeout", help="Stop after this many seconds."),
    log: bool = typer.Option(True, "--log/--no-log", help="Write predictions to the workspace's prediction log."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON when done."),
) -> None:
    """Score messages from a queue until SIGTERM/Ctrl-C (finishes the batch, flushes, acks)."""
    src = parse_source(source)
    ws = workspace()
    sink = scorer = None
    if log:
        from loopml.predictions import open_prediction_log

        sink = open_prediction_log(ws)
    try:
        scorer = _scorer(ws, model_ref, src, output=output, dead_letter=dead_letter, endpoint=endpoint,
                         batch_size=batch_size, sink=sink)
        where = scorer.stream if src.kind == "redis" else scorer.topic_in
        answers = scorer.output_stream if src.kind == "redis" else scorer.topic_out
        if json_out:
            counters = scorer.run(max_messages=max_messages, timeout_s=timeout)
        else:
            console.print(f"Scoring {where} with {scorer.served.name}/{scorer.served.version} -> {answers} "
                          "(Ctrl-C stops after the batch)")
            with Live(_status(scorer.counters), console=console, refresh_per_second=4, transient=False) as live:
                last = [0.0]

                def progress(c: Any) -> None:
                    now = time.monotonic()
                    if now - last[0] >= 0.25:
                        last[0] = now
                        live.update(_status(c))

                counters = scorer.run(max_messages=max_messages, timeout_s=timeout, on_progress=progress)
                live.update(_status(counters))
    finally:
        if src.kind == "redis" and scorer is not None:
            scorer.close()
        if sink is not None:
            sink.close()
    if json_out:
        print_json({"model_name": scorer.served.name, "model_version": scorer.served.version,
                    "endpoint": scorer.endpoint, "source": src.kind, "input": where, "output": answers,
                    **counters.to_dict()})


def register(app: typer.Typer) -> None:
    """Add the top-level ``stream`` command."""
    app.command("stream")(handle_errors(stream))
