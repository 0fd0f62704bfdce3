"""How a UI page runs: authenticate, call services in a worker thread, render a template.

A page is a plain function ``(request, ctx) -> Page``; an action is
``(request, ctx, form) -> str`` returning where to go next (POST, then
redirect, so reloading never repeats an action). Both run in the threadpool
because the service layer is synchronous. Errors from the loopml tree become
an error page with the matching status; a missing login becomes a redirect.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopml.governance.identity import NotAuthenticated
from loopml.kernel.exceptions import (
    AlreadyExistsError,
    LoopmlError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.ui._auth import UiCtx, check_csrf, identify

__all__ = ["Form", "Page", "action", "page", "url"]

_TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 64 * 1024

#: Pages on UI pages: scripts and styles from /ui/static only (inline SVG attributes are fine).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def _fmt_ts(value: Any) -> str:
    if value is None:
        return "—"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ")[:19]


def _fmt_num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_env.filters["ts"] = _fmt_ts
_env.filters["num"] = _fmt_num


def warm_up() -> None:
    """Compile every template, configure the ORM mappers and import what the pages call,
    now rather than on the first visitor's request (a first render must stay under 1 s)."""
    import importlib

    from sqlalchemy.orm import configure_mappers

    for name in _env.list_templates():
        _env.get_template(name)
    configure_mappers()
    for module in ("duckdb", "loopml.tracking", "loopml.register", "loopml.deploy", "loopml.monitor",
                   "loopml.monitor.alerts", "loopml.trigger", "loopml.predictions", "loopml.ingest",
                   "loopml.validate", "loopml.metadata.audit", "loopml.metadata.lineage"):
        importlib.import_module(module)


@dataclass
class Page:
    """A template and what it shows."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


Form = Mapping[str, list[str]]


def url(request: Request, path: str = "/", **query: Any) -> str:
    """An absolute path under the UI's mount point, with the non-empty query params."""
    base = request.scope.get("root_path", "")
    params = [(k, v) for k, v in query.items() if v not in (None, "", [])]
    flat: list[tuple[str, Any]] = []
    for k, v in params:
        if isinstance(v, (list, tuple)):
            flat.extend((k, item) for item in v)
        else:
            flat.append((k, v))
    return base + path + ("?" + urlencode(flat) if flat else "")


def render(request: Request, ctx: UiCtx | None, template: str, context: Mapping[str, Any], status: int = 200) -> Response:
    base = request.scope.get("root_path", "")
    html = _env.get_template(template).render(
        request=request, ctx=ctx, base=base, static=base + "/static",
        url=functools.partial(url, request), auth=request.app.state.ui.auth,
        flash=request.query_params.get("msg"), flash_error=request.query_params.get("err"),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP,
                                                           "X-Content-Type-Options": "nosniff",
                                                           "Cache-Control": "no-store"})


def _status(exc: LoopmlError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, AlreadyExistsError):
        return 409
    if isinstance(exc, ValidationError):
        return 400
    return 409 if not type(exc).__name__.endswith(("StoreError", "ArtifactError")) else 500


def _error(request: Request, ctx: UiCtx | None, exc: LoopmlError) -> Response:
    return render(request, ctx, "error.html", {"title": "Error", "message": str(exc).splitlines()[0],
                                                "kind": type(exc).__name__}, status=_status(exc))


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(url(request, "/login", next=request.url.path), status_code=303)


def page(func: Callable[[Request, UiCtx], Page | Response], *, action_name: str) -> Callable[[Request], Awaitable[Response]]:
    """A GET page needing ``action_name`` (``run.read`` ...)."""

    @functools.wraps(func)
    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        ctx: UiCtx | None = None
        try:
            ctx = await run_in_threadpool(identify, request)
            ctx.require(action_name)
            out = await run_in_threadpool(func, request, ctx)
        except NotAuthenticated:
            return _login_redirect(request)
        except LoopmlError as exc:
            return _error(request, ctx, exc)
        if isinstance(out, Response):
            return out
        response = render(request, ctx, out.template, out.context, out.status)
        response.headers["Server-Timing"] = f"page;dur={(time.perf_counter() - t0) * 1000:.1f}"
        return response

    return endpoint


async def read_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body (no multipart: every UI form is small and text-only)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ValidationError(f"form body exceeds {MAX_FORM_BYTES} bytes", field="body", rule="max_bytes")
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def first(form: Form, key: str, default: str = "") -> str:
    values = form.get(key)
    return values[0].strip() if values else default


def action(func: Callable[[Request, UiCtx, Form], str], *, action_name: str) -> Callable[[Request], Awaitable[Response]]:
    """A POST action needing ``action_name``; redirects (303) to what ``func`` returns, with a message."""

    @functools.wraps(func)
    async def endpoint(request: Request) -> Response:
        ctx: UiCtx | None = None
        try:
            ctx = await run_in_threadpool(identify, request)
            form = await read_form(request)
            if not check_csrf(ctx, first(form, "csrf")):
                raise PermissionDenied("the form's CSRF token is missing or stale: reload the page and try again")
            ctx.require(action_name, target=dict(request.path_params))
            target = await run_in_threadpool(func, request, ctx, form)
        except NotAuthenticated:
            return _login_redirect(request)
        except LoopmlError as exc:
            back = request.headers.get("referer")
            if back and ctx is not None and not isinstance(exc, PermissionDenied | NotFoundError):
                sep = "&" if "?" in back else "?"
                return RedirectResponse(f"{back.split('#')[0]}{sep}{urlencode({'err': str(exc).splitlines()[0]})}",
                                        status_code=303)
            return _error(request, ctx, exc)
        return RedirectResponse(target, status_code=303)

    return endpoint
