"""``loopml up``: API, UI, serving and scheduler in one process, started as a user starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_api_ui_and_endpoints_then_stops_on_sigterm(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy
    from loopml.register import register_model
    from loopml.workspace import init_workspace

    ws = init_workspace(tmp_path, actor="tester")
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    version = register_model(ws, "churn", LogisticRegression().fit(x, [0, 0, 1, 1]), gates_passed=True,
                             signature={"version": 1, "columns": {"a": {"type": "float"}, "b": {"type": "float"}}})
    deploy(ws, "churn-api", f"churn/{version.version}")
    ws.store.dispose()

    api_port, serve_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopml.cli.main", "up", "--port", str(api_port), "--serve-port", str(serve_port),
         "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        while not lines or lines[-1].rstrip() != "}":
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        urls = json.loads("".join(lines))
        assert str(api_port) in json.dumps(urls) and str(serve_port) in json.dumps(urls)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{api_port}/ui/", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{api_port}/api/v1/endpoints", timeout=10).json()["items"][0]["name"] == "churn-api"
        answer = httpx.post(f"http://127.0.0.1:{serve_port}/v2/models/churn-api/infer", timeout=10, json={
            "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [2.5]},
                       {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == str(version.version)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
