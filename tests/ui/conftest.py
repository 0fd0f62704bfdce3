"""A small real workspace, the real server on a loopback port, and a real headless Chromium.

Browser tests call :func:`require_browser`: it skips with the reason when
Playwright or Chromium is missing, and fails instead under
``LOOPML_REQUIRE_SERVICES=1`` (as ``require_service`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

CHROMIUM = os.environ.get("LOOPML_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).parent / "artifacts"


def require_browser() -> None:
    """Skip (or fail under LOOPML_REQUIRE_SERVICES=1) unless Playwright and Chromium are installed."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright Python package is not installed (pip install playwright)"
    if reason is None and not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if reason is None:
        return
    if os.environ.get("LOOPML_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and LOOPML_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


@dataclass
class World:
    """What the fixture workspace holds, for tests to point at."""

    ws: Any
    run_ids: list[str]
    request_id: str
    alert_id: int
    report_id: int
    endpoint: str = "churn-api"
    model: str = "churn"
    dataset: str = "customers"
    trigger: str = "nightly"


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(0, 60, n)
    charges = rng.normal(70, 20, n)
    plan = rng.choice(["basic", "pro"], n)
    churned = ((tenure < 12) & (charges > 60)).astype(int)
    return pd.DataFrame({"tenure": tenure, "charges": charges, "plan": plan, "churned": churned})


def build_world(ws: Any) -> World:
    """Datasets, runs with stepped metrics, two model versions, a canary, predictions, an alert, a trigger."""
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy
    from loopml.ingest import ingest
    from loopml.monitor import define_monitor, run_monitor
    from loopml.monitor.alerts import raise_alert
    from loopml.predictions import open_prediction_log
    from loopml.register import register_model
    from loopml.tracking import start_run
    from loopml.trigger import add_trigger
    from loopml.validate import infer_contract, set_contract

    df = _frame()
    ingest(ws, df, "customers", description="customer table")
    set_contract(ws, "customers", infer_contract(df, target="churned"))
    ingest(ws, pd.concat([df, _frame(50, seed=1)], ignore_index=True), "customers")
    x, y = df[["tenure", "charges"]], df["churned"]
    run_ids, versions = [], []
    for i, c in enumerate((0.1, 1.0, 10.0)):
        with start_run(ws, f"train-{i}", experiment="churn", tags={"team": "retention"}) as run:
            run.log_params({"model": "logreg", "C": c})
            for step in range(8):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
                run.log_metric("accuracy", 0.6 + 0.04 * step + 0.01 * i, step=step)
            run_ids.append(run.id)
        if i < 2:
            model = LogisticRegression(C=c).fit(x, y)
            evaluation = {"task": "classification", "target": "churned", "n_rows": 300,
                          "metrics": {"accuracy": 0.88 + 0.02 * i, "f1": 0.7 + 0.03 * i},
                          "slices": {"plan": [{"column": "plan", "label": "basic", "n_rows": 150,
                                               "metrics": {"accuracy": 0.86 + 0.02 * i}, "skipped": {}},
                                              {"column": "plan", "label": "pro", "n_rows": 150,
                                               "metrics": {"accuracy": 0.9 + 0.02 * i}, "skipped": {}}]}}
            gate_report = {"passed": True, "has_champion": i > 0, "message": "all gates passed",
                           "outcomes": [{"rule": "accuracy >= 0.8", "name": "min accuracy", "kind": "threshold",
                                         "status": "pass", "message": "accuracy 0.88 >= 0.8", "values": {}}]}
            mv = register_model(ws, "churn", model, run_id=run.id, dataset_versions=["customers@1"],
                                evaluation=evaluation, gate_report=gate_report, gates_passed=True,
                                task="classification", description=f"logistic regression, C={c}")
            versions.append(mv.version)
    for i in range(3, 8):
        with start_run(ws, f"sweep-{i}", experiment="sweep") as run:
            run.log_metric("accuracy", 0.5 + i / 20)
            run_ids.append(run.id)
    deploy(ws, "churn-api", f"churn/{versions[0]}")
    deploy(ws, "churn-api", f"churn/{versions[1]}", strategy="canary", steps=[0.2, 0.5, 1.0])
    log = open_prediction_log(ws)
    now = datetime.now(UTC)
    records = []
    for i in range(120):
        v = versions[1] if i % 5 == 0 else versions[0]
        records.append({"request_id": f"req-{i}", "ts": now - timedelta(seconds=(120 - i) * 20),
                        "endpoint": "churn-api", "model_name": "churn", "model_version": v,
                        "inputs": {"tenure": [float(i % 60)], "charges": [70.0 + i % 7]},
                        "outputs": {"predict": [i % 2]}, "latency_ms": 2.0 + (i % 9) * 0.5,
                        "status": 200 if i % 40 else 500, "error": None if i % 40 else "boom"})
    log.submit(records)
    log.close()
    alert = raise_alert(ws, rule="data_drift", endpoint="churn-api", message="tenure drifted (PSI 0.31)",
                        severity="warning", dedup_key="churn-api:data_drift")
    add_trigger(ws, "nightly", "schedule", recipe={"name": "churn"}, config={"cron": "0 3 * * *"})
    define_monitor(ws, {"name": "churn-api-hourly", "endpoint": "churn-api", "checks": ["health", "data_drift"]})
    report = run_monitor(ws, "churn-api-hourly")
    return World(ws=ws, run_ids=run_ids, request_id="req-7", alert_id=alert.id, report_id=report.id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    world: World


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real control plane + UI (embedded mode) on a free loopback port, over a fresh world."""
    from loopml.kernel.config import reset_settings
    from loopml.server import create_app
    from loopml.workspace import init_workspace

    reset_settings()
    ws = init_workspace(tmp_path_factory.mktemp("ui") / "ws", actor="tester")
    world = build_world(ws)
    try:
        with serve(create_app(ws, auth=False)) as url:
            yield LiveServer(url=url, world=world)
    finally:
        ws.store.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system (never a downloaded one), background networking off."""
    require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
