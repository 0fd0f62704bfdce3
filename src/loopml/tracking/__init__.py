"""Experiment tracking: runs, params, metrics, tags and run artifacts.

    with start_run(ws, "baseline", experiment="churn") as run:
        run.log_params({"model": "hgb", "lr": 0.1})
        for step, loss in enumerate(losses):
            run.log_metric("loss", loss, step=step)
        run.log_artifact("report.html", html)
    list_runs(ws, filter="metrics.acc > 0.5", order_by=["metrics.acc DESC"])

See README.md in this folder for the invariants (durability of buffered logging).
"""

from loopml.tracking._git import git_info
from loopml.tracking._query import (
    compare_runs,
    find_cached_artifacts,
    find_cached_run,
    get_run,
    list_runs,
    metric_history,
    runs_dataframe,
)
from loopml.tracking._records import ArtifactRef, RunRecord
from loopml.tracking._run import (
    FLUSH_INTERVAL_S,
    FLUSH_MAX_POINTS,
    ActiveRun,
    active_run,
    flush_all,
    log_batch,
    start_run,
)

__all__ = [
    "FLUSH_INTERVAL_S",
    "FLUSH_MAX_POINTS",
    "ActiveRun",
    "ArtifactRef",
    "RunRecord",
    "active_run",
    "compare_runs",
    "find_cached_artifacts",
    "find_cached_run",
    "flush_all",
    "get_run",
    "git_info",
    "list_runs",
    "log_batch",
    "metric_history",
    "runs_dataframe",
    "start_run",
]
