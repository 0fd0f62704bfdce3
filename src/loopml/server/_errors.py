"""The loopml error tree mapped to HTTP: one JSON body shape, ``{"error", "field", "rule", "type"}``.

Bad input is always a 4xx: validation 422, unknown object 404, taken name
409, missing or bad credentials 401, missing role 403, body too large 413.
A 5xx means the server or its store failed, never the caller; its body says
so without internals (the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopml.governance.identity import NotAuthenticated
from loopml.kernel import exceptions as E

__all__ = ["ERROR_RESPONSES", "STATUS", "ErrorBody", "install_error_handlers", "status_for"]

log = logging.getLogger("loopml.server")

#: Every class of the tree with its status; a test checks none is missing.
STATUS: dict[type[BaseException], int] = {
    E.LoopmlError: 500,
    E.ConfigError: 500,
    E.MissingExtraError: 501,
    E.ValidationError: 422,
    E.SpecError: 422,
    E.NotFoundError: 404,
    E.AlreadyExistsError: 409,
    E.StoreError: 503,
    E.ConcurrencyError: 503,
    E.ArtifactError: 500,
    E.IntegrityError: 500,
    E.AuditChainError: 500,
    E.DataError: 422,
    E.ContractViolation: 422,
    E.PipelineError: 422,
    E.StepFailed: 500,
    E.TrainingError: 500,
    E.GateFailed: 409,
    E.RegistryError: 400,
    E.ServingError: 500,
    E.BadRequest: 400,
    E.Overloaded: 503,
    E.DeploymentError: 409,
    E.MonitorError: 409,
    E.NotifierError: 502,
    E.TriggerError: 409,
    E.PermissionDenied: 403,
    NotAuthenticated: 401,
}


class ErrorBody(BaseModel):
    """What every error response carries."""

    error: str
    field: str | None = None
    rule: str | None = None
    type: str | None = None


#: Documented on every route so the OpenAPI document lists the real error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "Bad request"), (401, "Missing or invalid API token"), (403, "The role does not allow it"),
        (404, "Not found"), (405, "Method not allowed"), (409, "Conflict with the current state"),
        (413, "Request body too large"), (422, "Invalid input: names the field and the rule"),
        (500, "Server error"), (503, "The metadata store is busy or unreachable"),
    ]
}


def status_for(exc: BaseException) -> int:
    """The HTTP status of a loopml error: its nearest class in :data:`STATUS`."""
    if isinstance(exc, E.BadRequest):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _body(exc: BaseException, status: int) -> dict[str, Any]:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if status >= 500 and not isinstance(exc, (E.StoreError, E.MissingExtraError)):
        message = f"{type(exc).__name__}: {message}" if isinstance(exc, E.LoopmlError) else "internal server error"
    return {"error": message, "field": getattr(exc, "field", None), "rule": getattr(exc, "rule", None),
            "type": type(exc).__name__ if isinstance(exc, E.LoopmlError) else "InternalError"}


def _loopml_error(_request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        log.error("request failed: %s: %s", type(exc).__name__, exc)
    headers = {"WWW-Authenticate": 'Bearer realm="loopml"'} if status == 401 else None
    return JSONResponse(_body(exc, status), status_code=status, headers=headers)


def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    loc = [str(p) for p in first.get("loc", ())]
    where, path = (loc[0], loc[1:]) if loc and loc[0] in ("query", "path", "body", "header") else ("body", loc)
    field = ".".join(path) or where
    message = f"{where} {field!r}: {first.get('msg', 'invalid')}" if path else f"{where}: {first.get('msg', 'invalid')}"
    return JSONResponse({"error": message, "field": field, "rule": str(first.get("type", "invalid")),
                         "type": "ValidationError"}, status_code=422)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    return JSONResponse({"error": detail, "field": None, "rule": None, "type": "HTTPError"},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error: %s", type(exc).__name__)
    return JSONResponse({"error": "internal server error", "field": None, "rule": None, "type": "InternalError"},
                        status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Map the loopml tree, request validation and HTTP errors to :class:`ErrorBody` JSON."""
    app.add_exception_handler(E.LoopmlError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
