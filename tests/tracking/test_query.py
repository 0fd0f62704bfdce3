"""Listing, filtering, ordering and comparing runs."""

from __future__ import annotations

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.tracking import compare_runs, get_run, list_runs, runs_dataframe, start_run
from loopml.tracking._filter import parse_filter, parse_order_by


def _runs(ws) -> dict[str, str]:  # type: ignore[no-untyped-def]
    spec = [
        ("r1", "hgb", 0.9, "a", "succeeded"),
        ("r2", "hgb", 0.4, "b", "succeeded"),
        ("r3", "lr", 0.7, "a", "succeeded"),
        ("r4", "lr", None, "b", "failed"),
    ]
    ids = {}
    for name, model, acc, team, status in spec:
        run = start_run(ws, name, experiment="exp", tags={"team": team})
        run.log_params({"model": model, "depth": len(name) * int(name[1])})
        if acc is not None:
            run.log_metric("acc", acc)
        run.end(status)
        ids[name] = run.id
    with start_run(ws, "elsewhere", experiment="other") as run:
        run.log_metric("acc", 0.99)
    return ids


def test_filter_and_order_by(workspace) -> None:
    _runs(workspace)

    def names(**kw):  # type: ignore[no-untyped-def]
        return [r.name for r in list_runs(workspace, experiment="exp", **kw)]

    assert names(filter="metrics.acc > 0.5", order_by=["metrics.acc DESC"]) == ["r1", "r3"]
    assert names(filter="metrics.acc > 0.5 and params.model = 'hgb'") == ["r1"]
    assert names(filter="params.model = 'lr' or tags.team = 'a'", order_by=["name"]) == ["r1", "r3", "r4"]
    assert names(filter="status = 'failed'") == ["r4"]
    assert names(filter="not (params.model = 'hgb')", order_by=["name DESC"]) == ["r4", "r3"]
    assert names(filter="params.depth >= 6", order_by=["params.depth"]) == ["r3", "r4"]
    assert names(filter="tags.team IN ('b') and attributes.name LIKE 'r%'", order_by=["name"]) == ["r2", "r4"]
    # a run without the metric sorts last in either direction
    assert names(order_by=["metrics.acc ASC"]) == ["r2", "r3", "r1", "r4"]
    assert names(order_by=["metrics.acc DESC"]) == ["r1", "r3", "r2", "r4"]
    assert names() == ["r4", "r3", "r2", "r1"]  # newest first by default
    assert names(limit=2, offset=1) == ["r3", "r2"]
    assert names(filter="metrics.acc > 0", order_by=["metrics.acc"], limit=1, offset=1) == ["r3"]
    assert names(status="failed") == ["r4"]
    assert len(list_runs(workspace, filter="metrics.acc > 0.95")) == 1  # across experiments


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc >> 0.5", r"filter 'metrics.acc >> 0.5': expected a value .* found '>' at position 13"),
        ("metrics.acc 0.5", r"expected an operator \(=, !=, <, <=, >, >=, LIKE, ILIKE, IN\), found '0.5'"),
        ("accuracy > 1", r"unknown field 'accuracy'; use metrics.<key>, params.<key>, tags.<key>"),
        ("metrics.acc > 0.5 and", r"unexpected end; expected a comparison such as metrics.acc > 0.5"),
        ("(metrics.acc > 0.5", r"expected '\)' at position 18"),
        ("metrics.acc > 0.5 params.x = 1", r"unexpected 'params'; expected AND, OR or the end"),
        ("name LIKE 3", r"LIKE needs a quoted pattern, got 3"),
        ("metrics.acc > 0.5 ; drop", r"unexpected character ';' at position 18"),
    ],
)
def test_bad_filter_is_a_validation_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        parse_filter(text)
    assert info.value.field == "filter"


def test_bad_order_by_and_paging_are_validation_errors(sqlite_workspace) -> None:
    with pytest.raises(ValidationError, match=r"order_by 'metrics.acc sideways': unexpected 'sideways'; expected ASC or DESC"):
        parse_order_by(["metrics.acc sideways"])
    with pytest.raises(ValidationError, match=r"filter 'metrics.acc = ': expected a value"):
        list_runs(sqlite_workspace, filter="metrics.acc = ")
    with pytest.raises(ValidationError, match="status 'done' is invalid"):
        list_runs(sqlite_workspace, status="done")
    with pytest.raises(ValidationError, match="limit must be >= 0, got -1"):
        list_runs(sqlite_workspace, limit=-1)


def test_filter_parses_quoted_keys_and_literals() -> None:
    f = parse_filter("metrics.`val loss` < 1e-3 and params.note = 'it''s' and metrics.val.acc >= -1")
    assert f is not None
    assert f.fields() == {("metrics", "val loss"), ("params", "note"), ("metrics", "val.acc")}
    row = {"metrics": {"val loss": 0.0001, "val.acc": 0.5}, "params": {"note": "it's"}, "tags": {}}
    assert f.matches(row)
    assert parse_order_by(["start_time desc"])[0].key == "started_at"


def test_get_run_by_unique_prefix_and_not_found(workspace) -> None:
    run = start_run(workspace, "p")
    run.end()
    assert get_run(workspace, run.id[:20]).id == run.id
    with pytest.raises(NotFoundError, match="run 'ffffffffffff' not found"):
        get_run(workspace, "ffffffffffff")


def test_compare_runs_marks_differences(workspace) -> None:
    ids = _runs(workspace)
    result = compare_runs(workspace, [ids["r1"], ids["r2"], ids["r4"]])
    assert [r["name"] for r in result["runs"]] == ["r1", "r2", "r4"]
    assert result["params"]["model"] == {"values": ["hgb", "hgb", "lr"], "differs": True}
    assert result["metrics"]["acc"] == {"values": [0.9, 0.4, None], "differs": True}
    same = compare_runs(workspace, [ids["r1"], ids["r2"]])
    assert same["params"]["model"]["differs"] is False
    with pytest.raises(ValidationError, match="compare needs at least two run ids, got 1"):
        compare_runs(workspace, [ids["r1"]])


def test_runs_dataframe_has_one_column_per_key(sqlite_workspace) -> None:
    _runs(sqlite_workspace)
    df = runs_dataframe(sqlite_workspace, experiment="exp", order_by=["name"])
    assert list(df["name"]) == ["r1", "r2", "r3", "r4"]
    assert {"params.model", "metrics.acc", "tags.team"} <= set(df.columns)
