"""SIGTERM drains in-flight requests (a real server process)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.serve.conftest import free_port

SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from dataclasses import dataclass
    from typing import Any
    from loopml.serve import create_app, run_server

    class Slow:
        classes_ = np.array([0, 1])
        n_features_in_ = 2
        def predict_proba(self, x):
            time.sleep(1.5)
            return np.tile([0.5, 0.5], (len(x), 1))

    @dataclass(frozen=True)
    class M:
        name: str = "slow"
        version: int = 1
        estimator: Any = Slow()
        signature: Any = None
        task: str = "classification"

    run_server(lambda: create_app(M()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


def _inflight(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    match = re.search(r"^loopml_serve_inflight_requests(?:\{\})? (\S+)$", text, re.MULTILINE)
    assert match, "no in-flight gauge on /metrics"
    return float(match.group(1))


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SCRIPT)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        result: dict[str, Any] = {}

        def request() -> None:
            body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
            result["r"] = httpx.post(url + "/v2/models/slow/infer", json=body, timeout=20)

        t = threading.Thread(target=request)
        t.start()
        deadline = time.monotonic() + 20
        while _inflight(url) < 1:  # the request is in the server now (the model takes 1.5 s to answer it)
            assert time.monotonic() < deadline and t.is_alive(), "the request never reached the server"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        t.join(timeout=20)
        assert result["r"].status_code == 200
        assert result["r"].json()["outputs"][0]["data"] == [0]
        # uvicorn re-raises SIGTERM once it has drained, so the exit reads as the signal
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert b"Traceback" not in (proc.stdout.read() if proc.stdout else b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
