"""The controller's looks: each full analysis is judged at the rollout's alpha spent across looks and signals."""

from __future__ import annotations

from datetime import timedelta

from loopml.deploy import deploy, get_rollout
from loopml.kernel.types import utcnow
from loopml.predictions import open_prediction_log
from loopml.rollout import analyze_rollout, look_alpha
from tests.deploy.test_rollouts import _register


def test_every_full_analysis_is_judged_at_a_smaller_share_of_alpha(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = sqlite_workspace
    v1, v2 = _register(ws), _register(ws)
    deploy(ws, "e", f"churn/{v1}")
    deploy(ws, "e", f"churn/{v2}", strategy="canary", steps=[0.5, 1.0], min_requests=10_000, min_seconds=0)
    now = utcnow()
    rows = [{"request_id": f"r{i}", "ts": now - timedelta(seconds=1), "endpoint": "e", "model_name": "churn",
             "model_version": v1 if i % 2 else v2, "inputs": {"a": [0.1], "b": [0.2]}, "outputs": {"predict": [i % 2]},
             "latency_ms": 2.0, "status": 200, "error": None} for i in range(40)]
    with open_prediction_log(ws) as log:
        log.submit(rows)
    for look in (1, 2, 3):
        decision = analyze_rollout(ws, get_rollout(ws, "e"), now=now + timedelta(seconds=30 * look), force=True)
        assert decision.action == "hold"  # min_requests not reached: waiting, never judged on too little
        entry = get_rollout(ws, "e").evidence[-1]
        assert entry["look_index"] == look and entry["alpha"] == look_alpha(0.05, look, 3)
        assert entry["analyses"] == look if look > 1 else "analyses" not in entry  # identical holds collapse
