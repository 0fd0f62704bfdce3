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


def test_a_look_reuses_its_steps_window_and_idle_windows_are_let_go(sqlite_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from loopml.rollout import _controller

    ws = sqlite_workspace
    monkeypatch.setattr(_controller, "_TAILS", type(_controller._TAILS)())
    step = utcnow()
    first = _controller._tail(ws, "e", step)
    assert _controller._tail(ws, "e", step) is first  # the next look reads on from where this one stopped
    later = _controller._tail(ws, "e", step + timedelta(minutes=5))  # the next step: a window of its own
    assert later is not first and len(_controller._TAILS) == 2
    monkeypatch.setattr(_controller, "_TAIL_IDLE_S", -1.0)  # as if both had not been read for long
    _controller._tail(ws, "shadow", step)
    assert list(_controller._TAILS) == [(ws.settings.resolved_predictions_url, "shadow", step)]
    monkeypatch.setattr(_controller, "_TAIL_IDLE_S", 120.0)
    monkeypatch.setattr(_controller, "_MAX_TAILS", 3)
    for minute in range(5):
        _controller._tail(ws, "e", step + timedelta(minutes=minute))
    assert len(_controller._TAILS) == 3  # bounded, the least recently read first out
