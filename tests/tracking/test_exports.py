"""The public names of loopml.tracking are exactly its __all__."""

from __future__ import annotations

import loopml.tracking as tracking


def test_all_names_exist_and_nothing_else_is_public() -> None:
    public = {n for n in dir(tracking) if not n.startswith("_")}
    assert set(tracking.__all__) <= public
    assert public - set(tracking.__all__) == set()
    for name in ("start_run", "ActiveRun", "get_run", "list_runs", "metric_history", "compare_runs",
                 "git_info", "find_cached_run", "RunRecord"):
        assert name in tracking.__all__
