"""Seconds from ``PredictionLog.submit`` to the row being readable through ``count_predictions``.

Default intervals (flush 1 s, roll 10 s): 8 single records, ~0.4 s apart. Usage: python log_freshness.py
"""
import time, tempfile, statistics
from datetime import UTC, datetime
from pathlib import Path
from loopml.predictions import PredictionLog, count_predictions
from loopml.kernel.exceptions import NotFoundError
root = Path(tempfile.mkdtemp()) / "log"
plog = PredictionLog(root)
waits = []
for i in range(8):
    rec = {"request_id": f"r{i}", "ts": datetime.now(UTC), "endpoint": "e", "model_name": "m", "model_version": 1,
           "inputs": {"x": [1.0]}, "outputs": {"predict": [1]}, "latency_ms": 1.0, "status": 200, "error": None}
    t0 = time.monotonic(); plog.submit([rec])
    while True:
        try:
            if count_predictions(root, "e") == i + 1: break
        except NotFoundError: pass
        time.sleep(0.01)
    waits.append(time.monotonic() - t0)
    time.sleep(0.37)
print("seconds to visible:", [round(w, 2) for w in waits], "max", round(max(waits), 2), "parquet files:", len(list(root.glob("endpoint=*/**/*.parquet"))))
plog.close()
