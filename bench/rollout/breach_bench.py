"""Breach to rollback, end to end: a real server, the real scheduler, real traffic; seconds it takes.

    python bench/rollout/breach_bench.py [--runs 3] [--rate 100] [--weight 0.1] [--every 5]
        [--mode start|mid] [--healthy-s 20] [--rollout-tick 1] [--roll-s S] [--set KEY=VALUE ...]

Each run builds a fresh workspace (SQLite, the embedded default) with ``m/1``
(a HistGradientBoosting classifier) serving endpoint ``bench`` and starts a
canary of ``m/2`` (the same model wrapped by ``faulty.FailsOnCue``: it raises
on a fifth of the requests, ``--every 5``) at ``--weight`` with the canary
defaults (``min_requests`` 100, ``min_seconds`` 30, ``interval_s`` 1 s; change
any with ``--set``). Two processes are started the way a user runs them: the
model server (uvicorn, the prediction log on its defaults unless ``--roll-s``)
and the scheduler (``Scheduler.run_forever``, as ``loopml scheduler`` runs it,
with ``--rollout-tick``). This process sends single-row requests at ``--rate``
per second (open loop, 4 client threads) and records every answer.

``--mode start``: the candidate fails from its first request. ``--mode mid``:
it serves ``--healthy-s`` seconds healthily (the step has its full sample),
then starts failing (a flag file appears). ``--mode healthy``: it never fails;
the run lasts ``--healthy-s`` and passes when the rollout is still running (no
false rollback; give a long ``min_seconds`` so it does not promote either).

Printed per run: seconds from the first failing answer the client saw to (a)
the rollback's traffic change in the store (``traffic_changes.ts``) and (b)
the last answer from the candidate (the servers switched), the failing
answers clients got, and the decision's reason. The old cadence for
comparison: ``--rollout-tick 0 --set interval_s=10 --set early_alpha=0``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENDPOINT = "bench"
SIGNATURE = {
    "version": 1,
    "columns": {
        "age": {"type": "float", "nullable": False, "min": 0.0, "max": 120.0},
        "income": {"type": "float", "nullable": True},
        "visits": {"type": "int", "nullable": False, "min": 0},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro", "team"], "unseen": "reject"},
    },
    "target": "churn",
}


def _rows(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.uniform(18, 90, n).round(1),
        "income": rng.normal(50, 15, n).round(2),
        "visits": rng.integers(0, 30, n).astype(np.float64),
        "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n), categories=["basic", "pro", "team"]),
    })
    y = ((frame["age"] > 50) ^ (frame["plan"] == "pro")).astype(int).to_numpy()
    return frame, y


def setup(root: Path, every: int, flag: str | None, options: dict[str, Any]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from faulty import FailsOnCue  # type: ignore[import-not-found]
    from loopml.deploy import deploy
    from loopml.register import register_model
    from loopml.workspace import init_workspace

    ws = init_workspace(root, actor="bench")
    x, y = _rows(600, 0)
    base = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    for est in (base, FailsOnCue(base, every=every, flag_path=flag)):
        register_model(ws, "m", est, signature=SIGNATURE, task="classification", gates_passed=True)
    deploy(ws, ENDPOINT, "m/1")
    deploy(ws, ENDPOINT, "m/2", strategy="canary", **options)


def serve(root: Path, port: int, roll_s: float | None) -> None:
    from loopml.predictions import open_prediction_log
    from loopml.serve import create_app, run_server
    from loopml.workspace import open_workspace

    def factory():  # type: ignore[no-untyped-def]
        ws = open_workspace(root)
        log = open_prediction_log(ws, **({"roll_interval_s": roll_s} if roll_s else {}))
        return create_app(ENDPOINT, workspace=ws, sink=log, settings=ws.settings.serve.model_dump())

    run_server(factory, port=port)


def schedule(root: Path, rollout_tick_s: float) -> None:
    import signal

    from loopml.scheduler import Scheduler
    from loopml.workspace import open_workspace

    sched = Scheduler(open_workspace(root), rollout_tick_s=rollout_tick_s, execute_runs=False)
    signal.signal(signal.SIGTERM, lambda *_: sched.stop())
    sched.run_forever()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Traffic:
    """Single-row requests at a fixed rate from 4 threads; every answer kept as (t_sent, t_answered, status, version)."""

    def __init__(self, url: str, rate: float) -> None:
        self.url, self.rate = url, rate
        self.answers: list[tuple[float, float, int, int]] = []
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        frame, _ = _rows(4000, 42)
        self.records = frame.astype(object).to_dict("records")

    def _worker(self, t0: float) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                with self._lock:
                    i, self._next = self._next, self._next + 1
                due = t0 + i / self.rate
                if (wait := due - time.time()) > 0:
                    time.sleep(wait)
                sent = time.time()
                r = client.post("/invocations", json={"dataframe_records": [self.records[i % len(self.records)]]})
                version = int(r.headers.get("x-model-version", 0))
                with self._lock:
                    self.answers.append((sent, time.time(), r.status_code, version))

    def start(self) -> Traffic:
        t0 = time.time()
        self._threads = [threading.Thread(target=self._worker, args=(t0,), daemon=True) for _ in range(4)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def one_run(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    from loopml.deploy import get_rollout, traffic_history
    from loopml.workspace import open_workspace

    root = Path(tempfile.mkdtemp(prefix="loopml-breach-"))
    flag = str(root / "fail-now") if args.mode in ("mid", "healthy") else None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    me = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*me, "setup", str(root), str(args.every), flag or "", json.dumps(options)], env=env, check=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    logs = open(root / "processes.log", "wb")
    server = subprocess.Popen([*me, "serve", str(root), str(port), str(args.roll_s or "")], env=env, cwd=root,
                              stdout=logs, stderr=subprocess.STDOUT)
    sched = None
    try:
        _wait_ready(url, server)
        sched = subprocess.Popen([*me, "scheduler", str(root), str(args.rollout_tick)], env=env, cwd=root,
                                 stdout=logs, stderr=subprocess.STDOUT)
        t_sched = time.time()
        traffic = Traffic(url, args.rate).start()
        t_fault = time.time()
        if flag:
            time.sleep(args.healthy_s)
            if args.mode == "mid":
                Path(flag).touch()
            t_fault = time.time()
        ws = open_workspace(root)
        deadline = time.time() + (args.timeout_s if args.mode != "healthy" else 0)
        while get_rollout(ws, ENDPOINT).status == "running" and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)  # the servers' poll (1 s) and answers in flight: see the switch from the client side
        traffic.stop()
        r = get_rollout(ws, ENDPOINT)
        change = traffic_history(ws, ENDPOINT)[-1]
        sched_cpu_s = _cpu_seconds(sched.pid)
        sched_wall_s = time.time() - t_sched
    finally:
        for p in (sched, server):
            if p is not None:
                p.terminate()
        for p in (sched, server):
            if p is not None:
                p.wait(timeout=60)
        logs.close()
    answers = sorted(traffic.answers, key=lambda a: a[1])
    failed = [a for a in answers if a[2] >= 500]
    cand = [a for a in answers if a[3] == 2]
    if r.status != "rolled_back" or not failed:
        return {"status": r.status, "failed": len(failed), "answers": len(answers), "candidate_answers": len(cand),
                "analyses": sum(int(e.get("analyses", 1)) for e in r.evidence if "signals" in e),
                "reason": (r.evidence or [{}])[-1].get("reason")}
    first_fail = failed[0][1]
    t_change = change.ts.timestamp()
    last_cand = max(a[1] for a in cand)
    entry = r.evidence[-1]
    error = next((s for s in entry["signals"] if s["name"] == "error_rate"), {})
    return {
        "status": r.status, "fault_to_first_fail_s": round(first_fail - t_fault, 2),
        "first_fail_to_policy_s": round(t_change - first_fail, 2),
        "first_fail_to_last_candidate_answer_s": round(last_cand - first_fail, 2),
        "failed_answers": len(failed), "candidate_answers": len(cand), "answers": len(answers),
        "n_candidate_at_decision": error.get("n_candidate"), "early": bool((error.get("extra") or {}).get("early")),
        "analyses": sum(int(e.get("analyses", 1)) for e in r.evidence if "signals" in e),
        "evidence_entries": len(r.evidence),
        "scheduler_cpu_s": round(sched_cpu_s, 2), "scheduler_wall_s": round(sched_wall_s, 1),
        "reason": entry.get("reason"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second")
    ap.add_argument("--weight", type=float, default=0.1, help="the canary's first step")
    ap.add_argument("--every", type=int, default=5, help="the candidate fails rows with visits %% EVERY == 0")
    ap.add_argument("--mode", choices=("start", "mid", "healthy"), default="start")
    ap.add_argument("--healthy-s", type=float, default=20.0)
    ap.add_argument("--rollout-tick", type=float, default=1.0, help="Scheduler(rollout_tick_s=...); 0: main tick only")
    ap.add_argument("--roll-s", type=float, default=None, help="prediction log roll_interval_s (default: the library's)")
    ap.add_argument("--timeout-s", type=float, default=180.0)
    ap.add_argument("--set", action="append", default=[], help="rollout option KEY=VALUE (JSON value)")
    args = ap.parse_args()
    options: dict[str, Any] = {"steps": [args.weight, 1.0]}
    for item in args.set:
        key, _, raw = item.partition("=")
        options[key] = json.loads(raw)
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} loadavg {open('/proc/loadavg').read().split()[:3]} "
          f"args {vars(args)} options {options}", flush=True)
    results = []
    for i in range(args.runs):
        res = one_run(args, options)
        results.append(res)
        print(f"run {i + 1}: {json.dumps(res)}", flush=True)
    done = [r for r in results if r["status"] == "rolled_back" and "first_fail_to_policy_s" in r]
    if done:
        for key in ("first_fail_to_policy_s", "first_fail_to_last_candidate_answer_s", "failed_answers"):
            vals = [r[key] for r in done]
            print(f"{key}: median {statistics.median(vals)} (min {min(vals)}, max {max(vals)}, n={len(vals)})")
    print(f"# end loadavg {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("setup", "serve", "scheduler"):
        cmd, root = sys.argv[1], Path(sys.argv[2])
        if cmd == "setup":
            setup(root, int(sys.argv[3]), sys.argv[4] or None, json.loads(sys.argv[5]))
        elif cmd == "serve":
            serve(root, int(sys.argv[3]), float(sys.argv[4]) if sys.argv[4] else None)
        else:
            schedule(root, float(sys.argv[3]))
    else:
        main()
