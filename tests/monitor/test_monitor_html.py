"""The HTML view: self-contained, with every section a person needs to read a report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loopml.monitor import define_monitor, report_html, run_monitor
from tests.monitor.test_monitor_run import T0, log_rows, make_model


def test_html_report_has_overlays_history_and_tables(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    define_monitor(ws, {"endpoint": "churn", "window": {"last": "1h"},
                        "checks": ["schema", "data_drift", "prediction_drift", "quality", "outliers", "performance",
                                   "health"]})
    log_rows(ws, 800)
    run_monitor(ws, "churn", now=T0 + timedelta(minutes=30))
    log_rows(ws, 800, t0=T0 + timedelta(hours=2), start=5000, tenure_shift=4.0, charges_scale=7.0)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=2, minutes=30))
    html = report_html(ws, rec.id)
    for section in ('id="checks"', 'id="alerts"', 'id="drift"', 'id="prediction-drift"', 'id="drift-over-time"',
                    'id="schema"', 'id="quality"', 'id="outliers"', 'id="performance"', 'id="health"',
                    'id="parameters"'):
        assert section in html, section
    assert html.count("<svg") >= 5  # 3 feature overlays + prediction + drift over time
    assert "reference" in html and "current" in html and "tenure" in html
    assert "only 0 labelled rows" in html  # the skipped check says why
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "dataset drift" in html
    # the stored copy is what the view serves
    assert ws.artifacts.get_bytes(rec.html_digest).decode() == html
