"""The UI in a real headless Chromium: every page loads cleanly, and the key flows work by clicking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.ui.conftest import ARTIFACTS, LiveServer


class Watched:
    """A page with its console errors, page errors, failed requests and HTTP errors collected."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url} {r.failure}"))
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}")
                     if r.status >= 400 else None)
        self.page.on("dialog", lambda d: d.accept())

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Watched]:
    watched = Watched(browser)
    yield watched
    watched.close()


def _pages(live: LiveServer) -> list[tuple[str, str]]:
    w = live.world
    return [
        ("overview", "/ui/"),
        ("runs", "/ui/runs"),
        ("runs-sorted-filtered", "/ui/runs?order=metrics.accuracy+DESC&filter=metrics.accuracy+%3E+0.5"),
        ("run", f"/ui/runs/{w.run_ids[0]}"),
        ("runs-compare", f"/ui/runs/compare?id={w.run_ids[0]}&id={w.run_ids[1]}&id={w.run_ids[2]}"),
        ("datasets", "/ui/datasets"),
        ("dataset", f"/ui/datasets/{w.dataset}"),
        ("dataset-version", f"/ui/datasets/{w.dataset}/2?validate=1"),
        ("models", "/ui/models"),
        ("model", f"/ui/models/{w.model}"),
        ("model-version", f"/ui/models/{w.model}/2"),
        ("deployments", "/ui/deployments"),
        ("deployment", f"/ui/deployments/{w.endpoint}"),
        ("monitoring", "/ui/monitoring"),
        ("monitoring-report", f"/ui/monitoring/reports/{w.report_id}"),
        ("triggers", "/ui/triggers"),
        ("lineage", f"/ui/lineage?object=model_version:{w.model}/2"),
        ("predictions", f"/ui/predictions?endpoint={w.endpoint}"),
        ("audit", "/ui/audit"),
    ]


def test_every_page_loads_without_console_errors_or_failed_requests(live: LiveServer, tab: Watched) -> None:
    for name, path in _pages(live):
        response = tab.page.goto(live.url + path, wait_until="networkidle")
        assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
        assert tab.page.locator("main h1").count() == 1, f"{path} has no heading"
        tab.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        assert tab.problems == [], f"{path}: {tab.problems}"


def test_runs_sort_and_paginate_on_the_server(live: LiveServer, tab: Watched) -> None:
    tab.page.goto(live.url + "/ui/runs?limit=3")
    assert tab.page.locator("#runs-table tbody tr").count() == 3
    tab.page.get_by_role("link", name="next →").click()
    assert "offset=3" in tab.page.url and tab.page.locator("#runs-table tbody tr").count() == 3
    tab.page.get_by_role("link", name="accuracy").click()  # sort by the metric, descending
    assert "metrics.accuracy" in tab.page.url
    cells = tab.page.locator("#runs-table tbody td:nth-child(6)").all_inner_texts()  # accuracy: first metric column
    values = [float(v) for v in cells if v.strip() != "—"]
    assert values and values == sorted(values, reverse=True)
    assert tab.problems == []


def test_roll_back_a_canary_then_promote_one_by_clicking(live: LiveServer, tab: Watched) -> None:
    from loopml.deploy import deploy, get_rollout
    from loopml.register import resolve

    ws, endpoint = live.world.ws, live.world.endpoint
    tab.page.goto(f"{live.url}/ui/deployments/{endpoint}")
    tab.page.locator("form[action$='/rollback'] input[name=reason]").fill("p95 latency doubled")
    tab.page.get_by_role("button", name="Roll back").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert "rolled back" in tab.page.locator(".flash.ok").inner_text()
    rollout = get_rollout(ws, endpoint)
    assert rollout is not None and rollout.status == "rolled_back"

    deploy(ws, endpoint, f"{live.world.model}/2", strategy="canary", steps=[0.2, 1.0])
    tab.page.goto(f"{live.url}/ui/deployments/{endpoint}")
    tab.page.get_by_role("button", name="Promote").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert "promoted" in tab.page.locator(".flash.ok").inner_text()
    assert resolve(ws, f"{live.world.model}@champion").version == 2
    assert tab.problems == []


def test_acknowledge_an_alert_by_clicking(live: LiveServer, tab: Watched) -> None:
    from loopml.monitor.alerts import get_alert

    tab.page.goto(f"{live.url}/ui/monitoring")
    row = tab.page.locator("#alerts tbody tr", has_text="tenure drifted")
    row.get_by_role("button", name="Acknowledge").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert f"alert {live.world.alert_id} acknowledged" in tab.page.locator(".flash.ok").inner_text()
    alert = get_alert(live.world.ws, live.world.alert_id)
    assert alert.status == "acknowledged" and alert.acked_by == "tester"
    assert tab.problems == []


def test_fire_a_trigger_by_clicking_and_see_why(live: LiveServer, tab: Watched) -> None:
    tab.page.goto(f"{live.url}/ui/triggers")
    row = tab.page.locator("#triggers tbody tr", has_text=live.world.trigger)
    row.locator("input[name=reason]").fill("new labels landed")
    row.get_by_role("button", name="Fire now").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert "run request" in tab.page.locator(".flash.ok").inner_text()
    fired = tab.page.locator("#run-requests tbody tr").first
    assert live.world.trigger in fired.inner_text() and "new labels landed" in fired.inner_text()
    # a recipe someone submitted (loopml run against the server) says so, and who
    from loopml.trigger import submit_run

    submit_run(live.world.ws.as_actor("ana"), {"name": "retrain"}, reason="a notebook's recipe")
    tab.page.goto(f"{live.url}/ui/triggers")
    submitted = tab.page.locator("#run-requests tbody tr").first
    assert "submitted by ana" in submitted.inner_text() and "a notebook's recipe" in submitted.inner_text()
    assert tab.problems == []


def test_follow_lineage_from_a_prediction_to_its_dataset(live: LiveServer, tab: Watched) -> None:
    tab.page.goto(f"{live.url}/ui/predictions")
    tab.page.locator("input[name=request_id]").fill(live.world.request_id)
    tab.page.get_by_role("button", name="Find").click()
    rows = tab.page.locator("#predictions tbody tr")
    assert rows.count() == 1 and live.world.request_id in rows.first.inner_text()
    rows.first.get_by_role("link", name="lineage").click()
    tab.page.wait_for_url(re.compile(r"/ui/lineage\?object=model_version"))
    node = tab.page.locator(f"svg.lineage a[data-key='dataset_version:{live.world.dataset}@1']")
    node.click()  # expands the graph from the dataset version (in place, by the page's script)
    tab.page.locator("#open-root", has_text="dataset_version").click()
    tab.page.wait_for_url(re.compile(rf"/ui/datasets/{live.world.dataset}/1$"))
    assert tab.page.locator("main h1").inner_text() == f"Dataset {live.world.dataset}@1"
    tab.page.screenshot(path=str(ARTIFACTS / "lineage-to-dataset.png"), full_page=True)
    assert tab.problems == []


def test_approve_a_promotion_by_clicking(live: LiveServer, tab: Watched) -> None:
    """An endpoint policy needs one approval from someone who is not the author; the UI gives it."""
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy, get_endpoint
    from loopml.governance.approvals import request_approval, set_policy
    from loopml.kernel.exceptions import PermissionDenied
    from loopml.register import register_model

    ws, endpoint = live.world.ws, "churn-approvals"  # its own endpoint: independent of the other tests
    deploy(ws, endpoint, f"{live.world.model}/1")
    x = pd.DataFrame({"tenure": [1.0, 50.0, 3.0, 40.0], "charges": [80.0, 20.0, 90.0, 30.0]})
    author = ws.as_actor("alice")
    version = register_model(author, live.world.model, LogisticRegression().fit(x, [1, 0, 1, 0]),
                             gates_passed=True).version
    set_policy(ws, f"endpoint:{endpoint}", 1)
    with pytest.raises(PermissionDenied, match="needs 1 approval"):
        deploy(ws, endpoint, f"{live.world.model}/{version}")
    request = request_approval(author, f"{live.world.model}/{version}", endpoint=endpoint, reason="better recall")

    tab.page.goto(f"{live.url}/ui/deployments/{endpoint}")
    form = tab.page.locator(f"form[action$='/approvals/{request.id}/approve']")
    form.locator("input[name=reason]").fill("reviewed the evaluation per slice")
    form.get_by_role("button", name="Approve").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert "approved" in tab.page.locator(".flash.ok").inner_text()

    deploy(ws, endpoint, f"{live.world.model}/{version}")  # now allowed
    assert get_endpoint(ws, endpoint).serving_versions == [version]
    set_policy(ws, f"endpoint:{endpoint}", 0)
    assert tab.problems == []


def test_edit_the_model_card_by_clicking_then_open_it(live: LiveServer, tab: Watched) -> None:
    """Owner, intended use and limitations are edited on the version's page; the full card shows them."""
    from loopml.metadata.audit import audit_log

    model = live.world.model
    tab.page.goto(f"{live.url}/ui/models/{model}/1")
    form = tab.page.locator("#card-fields")
    form.locator("textarea[name=owner]").fill("retention-team")
    form.locator("textarea[name=intended_use]").fill("Monthly churn scoring of retail customers")
    form.get_by_role("button", name="Save card fields").click()
    tab.page.wait_for_url(re.compile(r"msg="))
    assert "model card of churn/1 saved" in tab.page.locator(".flash.ok").inner_text()
    assert tab.page.locator("textarea[name=owner]").input_value() == "retention-team"
    assert audit_log(live.world.ws, action="model.update", limit=1)[0].reason == "model card edited"
    response = tab.page.goto(f"{live.url}/ui/models/{model}/1/card.html", wait_until="networkidle")
    assert response is not None and response.status == 200
    body = tab.page.locator("body").inner_text()
    assert "retention-team" in body and "Monthly churn scoring" in body and "Evaluation" in body
    tab.page.screenshot(path=str(ARTIFACTS / "model-card.png"), full_page=True)
    assert tab.problems == []
