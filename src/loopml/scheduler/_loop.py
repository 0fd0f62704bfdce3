"""The whole loop, played once on real data: the second half of ``loopml quickstart``.

serve the champion → replay a later period as traffic (and its late labels)
→ monitor the window against the training reference → alert on drift → the
alert trigger fires a run request → retrain on fresh data → gate against the
champion on the same test data → register the challenger.

Every step goes through the same services a team would use (a real HTTP
server, the prediction log, monitors, alerts, triggers, the runner), so the
story it prints is also a smoke test of the platform.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopml.kernel.exceptions import MissingExtraError, NotFoundError, ServingError
from loopml.workspace import Workspace

__all__ = ["LoopStory", "play_loop"]

ENDPOINT = "rain-tomorrow"
REPLAY_START, REPLAY_END = "2015-01-01", "2015-07-01"


@dataclass
class LoopStory:
    """What happened, step by step, with the ids to look things up by."""

    endpoint: str
    served: str = ""
    url: str = ""
    requests: int = 0
    errors: int = 0
    labels: int = 0
    report_id: int | None = None
    report_status: str = ""
    report_path: str = ""
    drifted_features: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    run_request_id: int | None = None
    retrain_run_id: str | None = None
    retrain_error: str | None = None
    candidate: dict[str, Any] | None = None
    gate_report: dict[str, Any] | None = None
    champion: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """The real serving app under uvicorn, on a loopback port, in a thread."""

    def __init__(self, ws: Workspace, ref: str) -> None:
        try:
            import uvicorn

            from loopml.serve import create_app
        except ImportError as exc:
            raise MissingExtraError("uvicorn", "serve", "serving the champion in the quickstart") from exc
        from loopml.predictions import open_prediction_log

        self.log = open_prediction_log(ws)
        app = create_app({ENDPOINT: ref}, workspace=ws, sink=self.log)
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="loopml-quickstart-serve", daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise ServingError(f"the quickstart server for {ENDPOINT!r} did not start on port {self.port} "
                                   "within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _replay(url: str, frame: Any, target: str, features: list[str]) -> tuple[list[tuple[str, Any]], int]:
    """One request per day of the later period; returns (request id, true label) pairs and errors."""
    try:
        import httpx
    except ImportError as exc:
        raise MissingExtraError("httpx", "quickstart", "replaying traffic in the quickstart loop") from exc

    seen: list[tuple[str, Any]] = []
    errors = 0
    records = frame[features].astype(object).where(frame[features].notna(), None).to_dict(orient="records")
    with httpx.Client(base_url=url, timeout=30) as client:
        for row, label in zip(records, frame[target].tolist(), strict=True):
            response = client.post("/invocations", json={"dataframe_records": [row]})
            if response.status_code != 200:
                errors += 1
                continue
            seen.append((response.json()["request_id"], label))
    return seen, errors


def _retrain_recipe(recipe_path: Path, fresh_csv: Path) -> dict[str, Any]:
    from loopml.recipes import load_spec

    spec = load_spec(recipe_path).model_dump(by_alias=True, mode="json")  # paths resolved
    spec["data"]["source"] = str(fresh_csv)
    spec["register"]["alias_on_pass"] = "challenger"  # a person (or a canary) promotes it
    spec["register"]["alias_on_fail"] = None
    return spec


def play_loop(ws: Workspace, recipe_path: str | Path, *, say: Callable[[str], None] = lambda _m: None) -> LoopStory:
    """Play the loop once after the quickstart recipe registered a champion."""
    from loopml.monitor import define_monitor, report_html, run_monitor
    from loopml.predictions import record_feedback
    from loopml.recipes.sample_data import WEATHER_TARGET, weather_frame
    from loopml.register import resolve
    from loopml.scheduler._scheduler import execute_next_request
    from loopml.trigger import add_trigger, check_triggers, get_trigger

    recipe_path = Path(recipe_path)
    story = LoopStory(endpoint=ENDPOINT)
    champion = resolve(ws, f"{ENDPOINT}@champion")
    story.served = f"{champion.name}/{champion.version}"
    features = list((champion.signature or {}).get("columns", {}))

    later = weather_frame(start=REPLAY_START, end=REPLAY_END)
    with _Server(ws, f"{ENDPOINT}@champion") as server:
        story.url = server.url
        say(f"serving {story.served} at {server.url} (OIP v2 and /invocations), prediction log on")
        answered, story.errors = _replay(server.url, later, WEATHER_TARGET, features)
        story.requests = len(answered) + story.errors
        say(f"replayed {story.requests} days of {REPLAY_START[:4]} H1 as live requests ({story.errors} errors)")
    labels = [{"request_id": rid, "label": int(y)} for rid, y in answered]
    record_feedback(ws, ENDPOINT, labels)
    story.labels = len(labels)
    say(f"the next days' true labels arrived: {story.labels} feedback rows joined by request id")

    define_monitor(ws, {
        "name": ENDPOINT, "endpoint": ENDPOINT, "model": f"{ENDPOINT}@champion", "window": {"last": "6h"},
        "checks": {"schema": {}, "data_drift": {}, "prediction_drift": {}, "quality": {}, "outliers": {},
                   "performance": {"metric": "accuracy", "max_drop": 0.1, "min_labels": 50}, "health": {}},
    })
    report = run_monitor(ws, ENDPOINT)
    story.report_id, story.report_status = report.id, report.status
    html_path = ws.dir / "reports" / f"{ENDPOINT}-report-{report.id}.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(report_html(ws, report.id))
    story.report_path = str(html_path)
    story.drifted_features = list(report.summary.get("drifted_features") or [])
    story.alerts = list(report.summary.get("alerts") or [])
    say(f"monitor report #{report.id}: {report.status}; drifted: {', '.join(story.drifted_features) or 'none'}")

    fresh_csv = ws.root / "data" / "seattle_weather_2012_2015h1.csv"
    weather_frame(end=REPLAY_END).to_csv(fresh_csv, index=False, date_format="%Y-%m-%d")
    try:
        get_trigger(ws, "retrain-on-drift")
    except NotFoundError:
        add_trigger(ws, "retrain-on-drift", "alert", recipe=_retrain_recipe(recipe_path, fresh_csv),
                    recipe_path=str(recipe_path), config={"endpoint": ENDPOINT, "min_severity": "warning"})
    fired = check_triggers(ws)
    if not fired:
        say("no alert to act on: nothing retrained")
        story.champion = story.served
        return story
    story.run_request_id = fired[0].id
    say(f"alert → trigger 'retrain-on-drift' fired run request #{fired[0].id} with its context")
    done = execute_next_request(ws, "quickstart")
    if done is not None:
        story.retrain_run_id, story.retrain_error = done.run_id, done.error
    if done is not None and done.run_id:
        from loopml.tracking import get_run

        run = get_run(ws, done.run_id)
        say(f"retraining run {run.id} on fresh data ({run.status}), triggered by {run.trigger.get('type')}")
        story.candidate, story.gate_report = _outcome(ws, done.run_id)
    story.champion = f"{ENDPOINT}/{resolve(ws, f'{ENDPOINT}@champion').version}"
    return story


def _outcome(ws: Workspace, run_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The candidate version and its gate report, read back from the registry."""
    from loopml.register import list_versions

    for version in reversed(list_versions(ws, ENDPOINT)):
        if version.run_id == run_id:
            return ({"name": version.name, "version": version.version, "aliases": list(version.aliases),
                     "gates_passed": version.gates_passed}, version.gate_report)
    return None, None
