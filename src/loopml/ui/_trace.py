"""Lineage (a server-laid-out graph from any object), the audit log, and prediction look-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata.audit import audit_log, verify_audit
from loopml.metadata.lineage import DIRECTIONS, lineage
from loopml.predictions import list_endpoints as logged_endpoints
from loopml.predictions import open_view
from loopml.register import list_models
from loopml.ui._auth import UiCtx
from loopml.ui._core import Page, url
from loopml.ui._svg import lineage_svg

__all__ = ["ChainStatus", "audit", "lineage_page", "object_href", "predictions", "verify_now"]

AUDIT_PAGE = 100
RECENT_PREDICTIONS = 25
_PRED_COLUMNS = ("request_id", "row", "ts", "model_name", "model_version", "latency_ms", "status", "error", "prediction")


def object_href(request: Request, key: str) -> str | None:
    """The UI page of a lineage node, where there is one."""
    otype, _, oid = key.partition(":")
    if otype == "dataset_version" and "@" in oid:
        name, _, version = oid.rpartition("@")
        return url(request, f"/datasets/{name}/{version}")
    if otype == "model_version" and "/" in oid:
        name, _, version = oid.rpartition("/")
        return url(request, f"/models/{name}/{version}")
    if otype == "run":
        return url(request, f"/runs/{oid}")
    if otype in ("endpoint", "deployment"):
        return url(request, f"/deployments/{oid}")
    if otype == "trigger":
        return url(request, "/triggers")
    if otype == "alert":
        return url(request, "/monitoring", status="all")
    return None


def lineage_page(request: Request, ctx: UiCtx) -> Page:
    q = request.query_params
    obj = (q.get("object") or "").strip()
    direction = q.get("direction") if q.get("direction") in DIRECTIONS else "both"
    fragment = q.get("fragment") == "1"
    context: dict[str, Any] = {"title": "Lineage", "object": obj, "direction": direction, "directions": DIRECTIONS,
                               "graph": None, "svg": None, "error": None, "root": None, "root_href": None,
                               "neighbours": [], "suggestions": []}
    if obj:
        try:
            graph = lineage(ctx.ws, obj, direction=direction, max_depth=int(q.get("depth") or 6))
        except (NotFoundError, ValidationError) as exc:
            context["error"] = str(exc).splitlines()[0]
        else:
            data = graph.to_dict()
            context.update(
                graph=data, root=graph.root, root_href=object_href(request, graph.root.key),
                svg=lineage_svg(data, href=lambda key: url(request, "/lineage", object=key, direction=direction)),
                neighbours=[{"node": n, "href": object_href(request, n.key)} for n in graph.nodes[1:40]],
            )
    if not obj or context["error"]:
        context["suggestions"] = [f"model:{m.name}@{a}" for m in list_models(ctx.ws)[:20] for a in m.aliases][:20]
    return Page("lineage_fragment.html" if fragment else "lineage.html", context)


def predictions(request: Request, ctx: UiCtx) -> Page:
    endpoints = logged_endpoints(ctx.ws)
    q = request.query_params
    endpoint = q.get("endpoint") or (endpoints[0] if endpoints else None)
    request_id = (q.get("request_id") or "").strip()
    rows: list[dict[str, Any]] = []
    if endpoint:
        con = open_view(ctx.ws, endpoint, since=None if request_id else "1h")
        try:
            cols = [c[0] for c in con.execute("DESCRIBE predictions").fetchall()]
            # ts as epoch seconds: DuckDB would need pytz to hand TIMESTAMPTZ to Python
            select = ", ".join("epoch(ts) AS ts" if c == "ts" else f'"{c}"' for c in _PRED_COLUMNS if c in cols)
            if request_id:
                cur = con.execute(f"SELECT {select} FROM predictions WHERE request_id = $rid ORDER BY row LIMIT 500",
                                  {"rid": request_id})
            else:
                cur = con.execute(f"SELECT {select} FROM predictions ORDER BY ts DESC LIMIT {RECENT_PREDICTIONS}")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            con.close()
    for r in rows:
        r["ts"] = datetime.fromtimestamp(r["ts"], UTC) if r.get("ts") is not None else None
        if r.get("model_name") and r.get("model_version") is not None:
            key = f"model_version:{r['model_name']}/{r['model_version']}"
            r["lineage"] = url(request, "/lineage", object=key, direction="upstream")
    return Page("predictions.html", {"title": "Predictions", "endpoints": endpoints, "endpoint": endpoint or "",
                                     "request_id": request_id, "rows": rows})


class ChainStatus:
    """The audit chain's last verification, kept per process.

    Verifying re-hashes the whole chain (about 0.1 ms an entry), so a page
    never waits for it: the result is computed in a background thread when
    the audit page is first shown and again when it is older than ``max_age_s`` or the user
    asks (``POST /ui/audit/verify``), and the page shows the latest one.
    """

    def __init__(self, ws: Any, *, max_age_s: float = 300.0) -> None:
        self.ws = ws
        self.max_age_s = max_age_s
        self.problems: list[Any] | None = None
        self.checked_at: datetime | None = None
        self.n_entries: int | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._running = False

    def verify(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        try:
            head = audit_log(self.ws, limit=1)
            problems = verify_audit(self.ws)
            self.problems, self.error = problems, None
            self.n_entries = head[0].seq if head else 0
        except Exception as exc:  # a background thread must not die silently: show why on the page
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            self.checked_at = datetime.now(UTC)
            self._running = False

    def refresh_in_background(self) -> None:
        threading.Thread(target=self.verify, name="loopml-ui-audit-verify", daemon=True).start()

    def snapshot(self) -> dict[str, Any]:
        stale = self.checked_at is None or (datetime.now(UTC) - self.checked_at).total_seconds() > self.max_age_s
        if stale and not self._running:
            self.refresh_in_background()
        return {"problems": self.problems, "checked_at": self.checked_at, "n_entries": self.n_entries,
                "error": self.error, "running": self._running}


def verify_now(request: Request, ctx: UiCtx, form: Any) -> str:
    """Verify the chain now (synchronously) and go back to the log."""
    chain: ChainStatus = request.app.state.chain
    chain.verify()
    ok = chain.problems == [] and chain.error is None
    return url(request, "/audit", msg="hash chain verified" if ok else None,
               err=None if ok else "hash chain verification found problems")


def audit(request: Request, ctx: UiCtx) -> Page:
    q = request.query_params
    filters = {k: (q.get(k) or "").strip() or None for k in ("actor", "action", "object", "since", "until")}
    error = None
    try:
        entries = audit_log(ctx.ws, **filters, limit=AUDIT_PAGE + 1)
    except ValidationError as exc:
        error, entries = str(exc).splitlines()[0], []
    has_next = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    next_url = (url(request, "/audit", **{**filters, "until": entries[-1].ts.isoformat()})
                if has_next and entries else None)
    return Page("audit.html", {"title": "Audit", "entries": entries, "filters": filters, "error": error,
                               "chain": request.app.state.chain.snapshot(), "next_url": next_url})
