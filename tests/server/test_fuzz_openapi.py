"""Fuzz the control plane against its own OpenAPI document with schemathesis.

Every operation gets a bounded number of generated requests (valid and
invalid) sent to a real uvicorn server as an admin; no response may be a 5xx,
and every response must match the documented status codes, content types and
schemas. Skips when schemathesis is not installed (it is a test extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: pip install schemathesis (a loopml test extra)"
)

from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ThreadServer, seed_model, seed_runs, seed_trigger

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_ADMIN: dict[str, str] = {}


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A seeded workspace served with auth on; the schema loaded from the live /openapi.json."""
    from loopml.governance.identity import create_token, create_user
    from loopml.server import create_app
    from loopml.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("fuzz") / "ws", actor="fuzzer")
    create_user(ws, "root", roles={"*": "admin"})
    _ADMIN["Authorization"] = f"Bearer {create_token(ws, 'root').secret}"
    seed_runs(ws, 2)
    seed_model(ws, 1)
    seed_trigger(ws)
    server = ThreadServer(create_app(ws, auth=True)).start()
    try:
        yield schemathesis.openapi.from_url(server.url + "/openapi.json")
    finally:
        server.stop()
        ws.store.dispose()


def test_api_conforms_to_its_openapi_document(fuzz_schema: Any) -> None:
    """Every operation, a bounded number of generated cases each (schemathesis' Python API,
    not its pytest plugin, so the test does not depend on pytest internals)."""
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=dict(_ADMIN), checks=CHECKS)

        check()
