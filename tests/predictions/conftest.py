"""Record factories for the prediction log tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest


def make_records(n: int, *, start: int = 0, endpoint: str = "churn", version: int = 1,
                 ts: datetime | None = None, step: timedelta = timedelta(0)) -> list[dict[str, Any]]:
    """``n`` one-row requests as mappings shaped like ``loopml.serve.PredictionRecord``."""
    t0 = ts or datetime.now(UTC)
    return [
        {
            "request_id": f"req-{start + i}",
            "ts": t0 + step * i,
            "endpoint": endpoint,
            "model_name": "churn",
            "model_version": version,
            "inputs": {"tenure": float(start + i), "plan": "basic" if i % 2 else "pro"},
            "outputs": {"predict": [(start + i) % 2], "predict_proba": [[0.25, 0.75]], "classes": [0, 1]},
            "latency_ms": 1.5,
            "status": 200,
            "error": None,
        }
        for i in range(n)
    ]


@pytest.fixture
def records():  # type: ignore[no-untyped-def]
    return make_records
