"""Authentication and roles over a real server: what each role cannot do, tokens, embedded mode."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from loopml.governance.identity import ROLES, create_token, create_user
from loopml.kernel.exceptions import ConfigError
from loopml.kernel.types import utcnow

from .conftest import CSV, Live, seed_alert, seed_model, seed_trigger

#: What each role must be refused (403): (method, path, json body).
FORBIDDEN: dict[str, list[tuple[str, str, object]]] = {
    "viewer": [
        ("PUT", "/models/churn/aliases/challenger", {"version": 1}),
        ("POST", "/triggers/nightly/fire", {}),
        ("POST", "/alerts/1/ack", {}),
        ("POST", "/endpoints/e/deploy", {"model_ref": "churn/1"}),
        ("POST", "/users/viewer/tokens", {}),
    ],
    "data_scientist": [
        ("POST", "/endpoints/e/deploy", {"model_ref": "churn/1"}),
        ("PUT", "/models/churn/aliases/challenger", {"version": 1}),
        ("POST", "/triggers/nightly/fire", {}),
        ("POST", "/endpoints/e/rollout/promote", {}),
    ],
    "ml_engineer": [
        ("PUT", "/models/churn/aliases/champion", {"version": 1}),
        ("DELETE", "/models/churn/aliases/champion", None),
        ("POST", "/users/viewer/tokens", {}),
        ("GET", "/users", None),
    ],
    "approver": [
        ("GET", "/users", None),
        ("POST", "/users/viewer/disable", {}),
        ("PUT", "/users/viewer/roles/default/admin", None),
        ("GET", "/users/viewer/tokens", None),
    ],
}


@pytest.mark.parametrize("role", list(FORBIDDEN))
def test_each_role_is_refused_what_it_may_not_do(live: Live, role: str) -> None:
    seed_model(live.ws, 1)
    seed_trigger(live.ws)
    seed_alert(live.ws)
    client = live.client(role)
    for method, path, body in FORBIDDEN[role]:
        response = client.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["type"] == "PermissionDenied" and f"user {role!r}" in response.json()["error"]


def test_admin_cannot_remove_the_last_admin(live: Live) -> None:
    admin = live.client("admin")
    refused = admin.delete("/users/admin/roles/default/admin")
    assert refused.status_code == 422 and refused.json()["rule"] == "last_admin"
    assert admin.post("/users/admin/disable", json={}).json()["rule"] == "last_admin"
    assert admin.put("/users/approver/roles/default/admin").status_code == 200
    assert admin.delete("/users/admin/roles/default/admin").status_code == 200


def test_viewer_cannot_ingest_but_data_scientist_can(live_sqlite: Live) -> None:
    upload = {"content": CSV, "headers": {"Content-Type": "text/csv"}}
    assert live_sqlite.client("viewer").post("/datasets/w/versions", **upload).status_code == 403
    assert live_sqlite.client("data_scientist").post("/datasets/w/versions", **upload).status_code == 201


def test_nobody_but_admin_creates_users(live: Live) -> None:
    for role in ROLES:
        response = live.client(role).post("/users", json={"name": f"new-{role}", "roles": {"default": "viewer"}})
        assert response.status_code == (201 if role == "admin" else 403), (role, response.text)


def test_approver_moves_champion_and_the_audit_names_them(live: Live) -> None:
    seed_model(live.ws, 1)
    assert live.client("approver").put("/models/churn/aliases/champion", json={"version": 1}).status_code == 200
    event = live.client("viewer").get("/audit", params={"action": "model.alias"}).json()["items"][0]
    assert event["actor"] == "approver"


def test_every_route_declares_its_action(live_sqlite: Live) -> None:
    from fastapi.routing import APIRoute

    from loopml.server import create_app

    app = create_app(live_sqlite.ws, auth=True)
    undeclared = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in ("/health",):
            continue
        deps = [d.call for d in route.dependant.dependencies]
        if not any(hasattr(d, "action") for d in deps) and route.path != "/api/v1/whoami":
            undeclared.append(route.path)
    assert undeclared == []


def test_requests_without_or_with_bad_tokens_get_401(live_sqlite: Live) -> None:
    for token in (None, "nonsense", "lml_0000000000000000_" + "a" * 43):
        response = live_sqlite.client(None, token=token).get("/runs")
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    basic = httpx.get(live_sqlite.url + "/api/v1/runs", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401 and "Bearer" in basic.json()["error"]


def test_a_wrong_secret_reads_like_an_unknown_token(live: Live) -> None:
    token_id = live.tokens["viewer"].split("_")[1]
    wrong = live.client(None, token=f"lml_{token_id}_" + "b" * 43).get("/runs").json()["error"]
    unknown = live.client(None, token="lml_0123456789abcdef_" + "b" * 43).get("/runs").json()["error"]
    assert wrong == unknown == "the API token is not valid"


def test_expired_token_is_refused(live: Live) -> None:
    from sqlalchemy import update

    from loopml.metadata._orm import ApiToken

    token_id = live.tokens["viewer"].split("_")[1]
    with live.ws.store.write("test") as tx:
        tx.session.execute(update(ApiToken).where(ApiToken.id == token_id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
    response = live.client("viewer").get("/runs")
    assert response.status_code == 401 and f"API token {token_id} expired" in response.json()["error"]


def test_revoked_token_is_refused_and_users_may_revoke_their_own(live: Live) -> None:
    token_id = live.tokens["viewer"].split("_")[1]
    others = live.client("viewer").delete(f"/tokens/{live.tokens['admin'].split('_')[1]}")
    assert others.status_code == 403
    mine = live.client("viewer").get("/users/viewer/tokens").json()["items"]
    assert [t["id"] for t in mine] == [token_id] and "token" not in mine[0]
    assert live.client("viewer").delete(f"/tokens/{token_id}").json()["status"] == "revoked"
    refused = live.client("viewer").get("/runs")
    assert refused.status_code == 401 and "was revoked" in refused.json()["error"]


def test_disabled_user_is_refused(live: Live) -> None:
    assert live.client("admin").post("/users/viewer/disable", json={"reason": "left"}).status_code == 200
    refused = live.client("viewer").get("/runs")
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]


def test_admin_creates_user_and_token_shown_once_never_in_the_audit(live: Live) -> None:
    admin = live.client("admin")
    assert admin.post("/users", json={"name": "ci", "roles": {"default": ["data_scientist"]}}).status_code == 201
    made = admin.post("/users/ci/tokens", json={"name": "pipeline", "expires_in_days": 7}).json()
    secret = made["token"]
    assert secret.startswith(f"lml_{made['id']}_")
    assert live.client(None, token=secret).get("/whoami").json()["name"] == "ci"
    listed = admin.get("/users/ci/tokens").json()["items"]
    assert secret not in str(listed)

    export = admin.get("/audit/export").text
    secret_part = secret.split("_", 2)[2]
    assert secret_part not in export and secret not in export
    for token in live.tokens.values():
        assert token.split("_", 2)[2] not in export
    from loopml.metadata._orm import ApiToken

    with live.ws.store.read() as session:
        hashes = [row.secret_hash for row in session.query(ApiToken)]
    assert not any(h in export for h in hashes)
    created = admin.get("/audit", params={"action": "token.create", "object": f"token:{made['id']}"}).json()["items"]
    assert created[0]["after"] == {"id": made["id"], "user": "ci", "name": "pipeline",
                                   "expires_at": created[0]["after"]["expires_at"]}


def test_roles_are_per_project(workspace, start_server) -> None:  # type: ignore[no-untyped-def]
    from loopml.server import create_app

    create_user(workspace, "ana", roles={"default": "viewer", "fraud": "ml_engineer"})
    token = create_token(workspace, "ana").secret
    seed_model(workspace, 1)
    headers = {"Authorization": f"Bearer {token}"}
    default = start_server(create_app(workspace, auth=True))
    fraud = start_server(create_app(workspace, auth=True, project="fraud"))
    body = {"version": 1}
    assert httpx.put(default.url + "/api/v1/models/churn/aliases/b", json=body, headers=headers).status_code == 403
    assert httpx.put(fraud.url + "/api/v1/models/churn/aliases/b", json=body, headers=headers).status_code == 200


def test_embedded_mode_acts_as_the_os_user_without_a_token(sqlite_workspace, start_server) -> None:  # type: ignore[no-untyped-def]
    from loopml.server import create_app

    seed_model(sqlite_workspace, 1)
    server = start_server(create_app(sqlite_workspace, auth=False))
    c = httpx.Client(base_url=server.url + "/api/v1")
    assert c.get("/whoami").json()["local"] is True
    assert c.put("/models/churn/aliases/champion", json={"version": 1}).status_code == 200
    assert c.get("/audit", params={"action": "model.alias"}).json()["items"][0]["actor"] == "tester"
    c.close()


def test_embedded_mode_refuses_non_loopback_clients(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    from loopml.server import create_app

    app = create_app(sqlite_workspace, auth=False)

    async def call(client_ip: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return (await c.get("/api/v1/runs")).status_code

    assert asyncio.run(call("10.1.2.3")) == 403
    assert asyncio.run(call("127.0.0.1")) == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_non_loopback_bind_without_auth_refuses_to_start(host: str) -> None:
    from loopml.server import check_bind

    with pytest.raises(ConfigError, match=f"refusing to serve on {host} without authentication"):
        check_bind(host, auth=False)
    check_bind(host, auth=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_bind_needs_no_auth(host: str) -> None:
    from loopml.server import check_bind

    check_bind(host, auth=False)


def test_cli_server_refuses_public_bind_without_auth_in_one_line(sqlite_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from loopml.cli.main import app

    monkeypatch.chdir(sqlite_workspace.root)
    result = CliRunner().invoke(app, ["server", "--host", "0.0.0.0", "--port", "9"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0 without authentication" in lines[0]
