"""The UI's permissions: the server's roles with auth on, CSRF on every action (no browser needed)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ui.conftest import LiveServer, build_world, serve


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def test_an_action_without_the_csrf_token_is_refused(live: LiveServer) -> None:
    from loopml.monitor.alerts import get_alert

    with httpx.Client(base_url=live.url) as client:
        r = client.post(f"/ui/alerts/{live.world.alert_id}/ack", data={"csrf": "0" * 32})
        assert r.status_code == 403 and "CSRF" in r.text
    assert get_alert(live.world.ws, live.world.alert_id).status == "open"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A world served with auth on, and tokens for a viewer and an ML engineer."""
    from loopml.governance import create_token, create_user
    from loopml.server import create_app
    from loopml.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("ui-auth") / "ws", actor="tester")
    world = build_world(ws)
    create_user(ws, "vera", roles={"default": "viewer"})
    create_user(ws, "eli", roles={"default": "ml_engineer"})
    tokens = {"vera": create_token(ws, "vera")[1], "eli": create_token(ws, "eli")[1]}
    try:
        with serve(create_app(ws, auth=True)) as url:
            yield {"url": url, "world": world, "tokens": tokens}
    finally:
        ws.store.dispose()


@contextlib.contextmanager
def _signed_in(team: dict[str, Any], user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=team["url"]) as client:
        r = client.post("/ui/login", data={"token": team["tokens"][user], "next": "/ui/"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"
        yield client


def test_with_auth_on_pages_ask_for_a_token(team: dict[str, Any]) -> None:
    with httpx.Client(base_url=team["url"]) as client:
        r = client.get("/ui/runs")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
        r = client.post("/ui/login", data={"token": "lml_nope_nope"})
        assert r.status_code == 303 and "err=" in r.headers["location"]


def test_a_viewer_sees_no_rollout_buttons_and_cannot_roll_back(team: dict[str, Any]) -> None:
    from loopml.deploy import get_rollout

    endpoint = team["world"].endpoint
    with _signed_in(team, "vera") as client:
        page = client.get(f"/ui/deployments/{endpoint}")
        assert page.status_code == 200 and "Roll back" not in page.text and "may not drive rollouts" in page.text
        alerts = client.get("/ui/monitoring")
        assert "Acknowledge" not in alerts.text
        r = client.post(f"/ui/deployments/{endpoint}/rollback", data={"csrf": _csrf(page.text), "reason": "no"})
        assert r.status_code == 403 and "rollout.write" in r.text and "ml_engineer or higher" in r.text
    rollout = get_rollout(team["world"].ws, endpoint)
    assert rollout is not None and rollout.status == "running"


def test_an_ml_engineer_pauses_a_rollout_and_the_audit_names_them(team: dict[str, Any]) -> None:
    from loopml.deploy import get_rollout
    from loopml.metadata.audit import audit_log

    endpoint = team["world"].endpoint
    with _signed_in(team, "eli") as client:
        page = client.get(f"/ui/deployments/{endpoint}")
        assert "Roll back" in page.text
        r = client.post(f"/ui/deployments/{endpoint}/pause", data={"csrf": _csrf(page.text)})
        assert r.status_code == 303 and "paused" in r.headers["location"]
        assert client.post(f"/ui/deployments/{endpoint}/explode", data={"csrf": _csrf(page.text)}).status_code == 404
    rollout = get_rollout(team["world"].ws, endpoint)
    assert rollout is not None and rollout.status == "paused"
    assert audit_log(team["world"].ws, action="rollout.pause", limit=1)[0].actor == "eli"


def test_a_viewer_reads_the_model_card_but_cannot_edit_it(team: dict[str, Any]) -> None:
    from loopml.register import resolve

    model = team["world"].model
    with _signed_in(team, "vera") as client:
        page = client.get(f"/ui/models/{model}/1")
        assert page.status_code == 200 and 'id="card-fields"' not in page.text and "full card (HTML)" in page.text
        md = client.get(f"/ui/models/{model}/1/card.md")
        assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
        assert f"# Model card: {model}/1" in md.text and "attachment" in md.headers["content-disposition"]
        html = client.get(f"/ui/models/{model}/1/card.html")
        assert html.status_code == 200 and "<script" not in html.text
        assert "default-src 'none'" in html.headers["content-security-policy"]
        r = client.post(f"/ui/models/{model}/1/card", data={"csrf": _csrf(page.text), "owner": "vera"})
        assert r.status_code == 403 and "model.register" in r.text
    assert "card.owner" not in (resolve(team["world"].ws, f"{model}/1").tags or {})
    with _signed_in(team, "eli") as client:  # ml_engineer holds model.register
        page = client.get(f"/ui/models/{model}/1")
        assert 'id="card-fields"' in page.text
        back = {"referer": f"{team['url']}/ui/models/{model}/1"}
        r = client.post(f"/ui/models/{model}/1/card", headers=back, data={"csrf": _csrf(page.text),
                                                                            "owner": "risk-team",
                                                                            "limitations": "x" * 10_001})
        assert r.status_code == 303 and "err=" in r.headers["location"] and "limitations" in r.headers["location"]
        r = client.post(f"/ui/models/{model}/1/card", data={"csrf": _csrf(page.text), "owner": "risk-team"})
        assert r.status_code == 303 and "saved" in r.headers["location"]
    assert resolve(team["world"].ws, f"{model}/1").tags["card.owner"] == "risk-team"
