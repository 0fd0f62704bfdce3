"""The error mapping covers the whole loopml tree; bad input is never a 5xx."""

from __future__ import annotations

from loopml.governance.identity import NotAuthenticated
from loopml.kernel import exceptions as E
from loopml.server._errors import STATUS, status_for


def test_every_error_class_has_an_explicit_status() -> None:
    classes = {getattr(E, name) for name in E.__all__}
    assert classes - set(STATUS) == set()


def test_bad_input_maps_to_4xx() -> None:
    for exc in (E.ValidationError("x"), E.SpecError("x"), E.NotFoundError("x"), E.AlreadyExistsError("x"),
                E.DataError("x"), E.ContractViolation("x"), E.PermissionDenied("x"), NotAuthenticated("x"),
                E.BadRequest("x", status=413)):
        assert 400 <= status_for(exc) < 500, exc
    assert status_for(NotAuthenticated("x")) == 401 and status_for(E.PermissionDenied("x")) == 403
    assert status_for(E.BadRequest("x", status=413)) == 413
    assert status_for(E.ConcurrencyError("x")) == 503 and status_for(RuntimeError("x")) == 500
