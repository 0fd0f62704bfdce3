"""The ASGI application: a raw inference path in front of a small Starlette app.

Why raw ASGI for ``POST .../infer`` and ``/invocations``: the request path is
the product here (see bench/serving). It reads the body with a size limit,
parses it with orjson into numpy, hands it to the endpoint's micro-batcher
and writes orjson bytes back, with no Request/Response objects, middleware
or per-request logging I/O. Everything else (health, metadata, metrics,
OpenAPI) is ordinary Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from loopml.kernel.exceptions import (
    BadRequest,
    NotFoundError,
    Overloaded,
    ValidationError,
)
from loopml.kernel.types import new_id
from loopml.serve._batcher import Job, MicroBatcher
from loopml.serve._codecs import parse_invocations, parse_oip
from loopml.serve._config import ServeConfig
from loopml.serve._metrics import Counter, CounterFunc, Gauge, Histogram, Registry
from loopml.serve._openapi import openapi_document
from loopml.serve._records import PredictionRecord, PredictionSink
from loopml.serve._router import (
    AliasRouter,
    ModelRouter,
    ServedModel,
    SingleModelRouter,
)
from loopml.serve._shadow_worker import ShadowWorker, ShadowWorkerSpec

__all__ = ["Endpoint", "ServeApp", "create_app"]

log = logging.getLogger("loopml.serve")

_JSON = (b"content-type", b"application/json")
_OPTS = orjson.OPT_SERIALIZE_NUMPY
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("loopml")
    except Exception:  # running from a source tree without metadata
        return "0+unknown"


@dataclass
class Endpoint:
    """A served name: its router (which version answers) and its batcher."""

    name: str
    router: Any  # ModelRouter
    config: ServeConfig
    batcher: MicroBatcher | None = None
    #: payload field for the sticky key when no X-Request-Key header is sent (``PolicyRouter.key_field``)
    key_field: str | None = None


class ServeApp:
    """The ASGI callable ``create_app`` returns (``.starlette`` serves the non-inference routes)."""

    def __init__(self, endpoints: dict[str, Endpoint], sink: PredictionSink | None) -> None:
        if not endpoints:
            raise ValidationError("a server needs at least one model or endpoint", field="models", rule="min")
        self.endpoints = endpoints
        self.default = next(iter(endpoints.values()))
        self.sink = sink
        self.version = _version()
        self.inflight = 0
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []
        m = self.metrics = Registry()
        self.m_requests: Counter = m.add(Counter(  # type: ignore[assignment]
            "loopml_serve_requests_total", "Inference requests by endpoint, model version and HTTP status.",
            ("endpoint", "model_version", "status")))
        self.m_errors: Counter = m.add(Counter(  # type: ignore[assignment]
            "loopml_serve_errors_total", "Failed inference requests by endpoint, model version, status and rule.",
            ("endpoint", "model_version", "status", "rule")))
        self.m_latency: Histogram = m.add(Histogram(  # type: ignore[assignment]
            "loopml_serve_request_duration_seconds", "Inference request latency, body read to response.",
            _LATENCY_BUCKETS, ("endpoint",)))
        self.m_batch_rows: Histogram = m.add(Histogram(  # type: ignore[assignment]
            "loopml_serve_batch_rows", "Rows per model call.", _BATCH_BUCKETS, ("endpoint",)))
        self.m_batch_reqs: Histogram = m.add(Histogram(  # type: ignore[assignment]
            "loopml_serve_batch_requests", "Requests merged into one model call.", _BATCH_BUCKETS, ("endpoint",)))
        self.m_feedback: Counter = m.add(Counter(  # type: ignore[assignment]
            "loopml_serve_feedback_rows_total", "True labels received on POST .../feedback, by endpoint.",
            ("endpoint",)))
        m.add(Gauge("loopml_serve_queue_depth", "Requests waiting for the model.", ("endpoint",),
                    callback=lambda: {(n, ): float(len(e.batcher.queue)) for n, e in self.endpoints.items()
                                      if e.batcher is not None}))
        m.add(Gauge("loopml_serve_inflight_requests", "Inference requests being handled.",
                    callback=lambda: {(): float(self.inflight)}))
        m.add(Gauge("loopml_serve_model_info", "The model version each endpoint serves now.",
                    ("endpoint", "model_name", "model_version"),
                    callback=lambda: {(n, s.name, s.version_str): 1.0 for n, e in self.endpoints.items()
                                      for s in e.router.models()}))
        m.add(Gauge("loopml_serve_model_swaps", "Model version swaps since start (hot swap).", ("endpoint",),
                    callback=lambda: {(n,): float(getattr(e.router, "swaps", 0)) for n, e in self.endpoints.items()}))
        m.add(CounterFunc("loopml_serve_shadow_dropped_total",
                          "Shadow copies of requests dropped because the shadow lane was behind, by endpoint.",
                          ("endpoint",), callback=lambda: {(n,): float(e.batcher.shadow_dropped)
                                                           for n, e in self.endpoints.items()
                                                           if e.batcher is not None and e.batcher.shadow is not None}))
        m.add(Gauge("loopml_serve_prediction_log_lag_seconds",
                    "Age of the oldest prediction-log record not yet written (0 without a log).",
                    callback=self._sink_lag))
        self.starlette = Starlette(routes=self._routes(), lifespan=self._lifespan,
                                   exception_handlers={HTTPException: _http_error})  # type: ignore[dict-item]
        self._openapi: bytes | None = None

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path == "/invocations":
                return await self._infer(self.default, False, None, scope, receive, send)
            if path.startswith("/v2/models/") and path.endswith("/infer"):
                parts = path[11:-6].split("/")
                if len(parts) == 1:
                    return await self._infer(self.endpoints.get(parts[0]), True, None, scope, receive, send)
                if len(parts) == 3 and parts[1] == "versions":
                    return await self._infer(self.endpoints.get(parts[0]), True, parts[2], scope, receive, send)
        await self.starlette(scope, receive, send)

    async def _infer(self, ep: Endpoint | None, oip: bool, version: str | None,
                     scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        ts = time.time()
        self.inflight += 1
        rid: str | None = None
        rkey: str | None = None
        clen: bytes | None = None
        ctype: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")
            elif key == b"content-length":
                clen = value
            elif key == b"content-type":
                ctype = value
            elif key == b"x-request-key":  # sticky (A/B) routing key
                rkey = value.decode("latin-1")
        if rid is None or not (0 < len(rid) <= 128) or not rid.isprintable():
            rid = new_id()
        status = 200
        served: ServedModel | None = None
        headers = [_JSON, (b"x-request-id", rid.encode("latin-1"))]
        ep_name = ep.name if ep is not None else "-"
        try:
            try:
                if ep is None:
                    raise NotFoundError(f"no model named {scope['path'][11:-6].split('/')[0]!r} is served here; "
                                        f"served: {sorted(self.endpoints)}")
                if ctype is not None and b"json" not in ctype and not ctype.startswith(b"*/*"):
                    raise BadRequest(f"content type {ctype.decode('latin-1')!r} is not supported; "
                                     "send application/json", field="content-type", rule="content_type", status=415)
                body = await self._read_body(receive, clen, ep.config.max_body_bytes)
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    payload = _loads_with_nan(body, exc)
                if rkey is None and ep.key_field is not None:
                    rkey = ep.router.key_from_payload(payload)
                served = ep.router.route(rkey or rid)
                if version is not None and version != served.version_str:  # type: ignore[union-attr]
                    pick = getattr(ep.router, "pick", None)  # a traffic policy serves several versions
                    served = pick(version) if pick is not None else None
                    if served is None:
                        raise NotFoundError(f"model {ep.name!r} version {version!r} is not served here; serving "
                                            f"version(s) {', '.join(m.version_str for m in ep.router.models())}")
                if oip:
                    parsed = parse_oip(payload, served.contract, ep.config.max_rows)  # type: ignore[union-attr]
                else:
                    parsed = parse_invocations(payload, served.contract, ep.config.max_rows)  # type: ignore[union-attr]
            except (BadRequest, NotFoundError, Overloaded):
                raise
            except Exception as exc:  # a body shape the parser did not foresee is still the client's input
                log.debug("unexpected parse failure", exc_info=True)
                raise BadRequest(f"could not read the request: {type(exc).__name__}: {exc}"[:300],
                                 rule="format") from None
            loop = asyncio.get_running_loop()
            fut = ep.batcher.submit(Job(served, parsed.frame, rid, t0, ts, loop.create_future()))  # type: ignore[union-attr,arg-type]
            res = await fut
            if res.error is not None:
                raise res.error
            s: ServedModel = served  # type: ignore[assignment]
            headers.append((b"x-model-name", s.name.encode()))
            headers.append((b"x-model-version", s.version_str.encode()))
            if oip:
                n = parsed.frame.n
                want = parsed.outputs or ("predict", "predict_proba")
                outs: list[dict[str, Any]] = []
                if "predict" in want:
                    outs.append({"name": "predict", "shape": [n],
                                 "datatype": s.label_datatype if s.classifier else "FP64", "data": res.labels})
                if "predict_proba" in want and res.proba is not None:
                    outs.append({"name": "predict_proba", "shape": [n, res.proba.shape[1]], "datatype": "FP64",
                                 "data": res.proba.ravel(), "parameters": {"classes": s.classes_list}})
                out: dict[str, Any] = {"model_name": s.name, "model_version": s.version_str,
                                       "id": parsed.oip_id or rid, "parameters": {"request_id": rid},
                                       "outputs": outs}
            else:
                out = {"predictions": res.labels}
                if res.proba is not None:
                    out["probabilities"] = res.proba
                    out["classes"] = s.classes_list
                out["model_name"] = s.name
                out["model_version"] = s.version
                out["request_id"] = rid
            data = orjson.dumps(out, option=_OPTS)
        except BadRequest as exc:
            status = exc.status
            data = self._error(exc, exc.field, exc.rule, oip, rid)
        except NotFoundError as exc:
            status = 404
            data = self._error(exc, "model", "not_found", oip, rid)
        except Overloaded as exc:
            status = 503
            data = self._error(exc, None, "overloaded", oip, rid)
            headers.append((b"retry-after", str(ep.config.retry_after_s).encode()))  # type: ignore[union-attr]
        except _ClientGone:
            self.inflight -= 1
            return
        except Exception as exc:
            log.exception("inference request %s failed", rid)
            status = 500
            data = self._error(exc, None, "internal", oip, rid)
        if status != 200 and served is not None:  # say which version failed (a canary's errors are its own)
            headers.append((b"x-model-name", served.name.encode()))
            headers.append((b"x-model-version", served.version_str.encode()))
        headers.append((b"content-length", str(len(data)).encode()))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
        finally:
            self.inflight -= 1
            ver = served.version_str if served is not None else ""
            self.m_requests.inc((ep_name, ver, str(status)))
            self.m_latency.observe((ep_name,), time.perf_counter() - t0)
            if status >= 400:
                self._count_error(ep_name, ver, status, data, rid, served, ts, t0)

    def _count_error(self, ep_name: str, ver: str, status: int, data: bytes, rid: str,
                     served: ServedModel | None, ts: float, t0: float) -> None:
        err = orjson.loads(data)
        self.m_errors.inc((ep_name, ver, str(status), str(err.get("rule") or "")))
        if self.sink is not None and status != 503:
            rec = PredictionRecord(
                request_id=rid, ts=datetime.fromtimestamp(ts, UTC), endpoint=ep_name,
                model_name=served.name if served else None, model_version=served.version if served else None,
                inputs=None, outputs=None, latency_ms=(time.perf_counter() - t0) * 1000.0, status=status,
                error=err.get("error"))
            try:
                self.sink.submit([rec])
            except Exception:
                log.exception("prediction sink rejected an error record")

    @staticmethod
    def _error(exc: BaseException, field: str | None, rule: str | None, oip: bool, rid: str) -> bytes:
        body: dict[str, Any] = {"error": str(exc), "field": field, "rule": rule, "request_id": rid}
        if not oip:  # MLflow clients read error_code/message
            body["error_code"] = "BAD_REQUEST" if rule not in ("overloaded", "internal") else "INTERNAL_ERROR"
            body["message"] = str(exc)
        return orjson.dumps(body)

    @staticmethod
    async def _read_body(receive: Any, clen: bytes | None, limit: int) -> bytes:
        if clen is not None:
            try:
                declared = int(clen)
            except ValueError:
                raise BadRequest("Content-Length is not a number", field="content-length", rule="format") from None
            if declared > limit:
                raise BadRequest(f"the body has {declared} bytes; the limit is {limit} bytes",
                                 field="body", rule="max_body_bytes", status=413)
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _ClientGone
        body: bytes = msg.get("body", b"")
        if not msg.get("more_body"):
            if len(body) > limit:
                raise BadRequest(f"the body is over the limit of {limit} bytes", field="body",
                                 rule="max_body_bytes", status=413)
            return body
        chunks = [body]
        size = len(body)
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _ClientGone
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the body is over the limit of {limit} bytes", field="body",
                                 rule="max_body_bytes", status=413)
            chunks.append(chunk)
            if not msg.get("more_body"):
                return b"".join(chunks)

    # ------------------------------------------------------------- lifecycle

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        for ep in self.endpoints.values():
            # A traffic policy may name shadow versions; shadow_for_batch samples its shadow_fraction.
            shadow = getattr(ep.router, "shadow_for_batch", None) or getattr(ep.router, "shadow_models", None)
            shadow_name = None
            if shadow is not None:
                from loopml.deploy import shadow_endpoint_name

                shadow_name = shadow_endpoint_name(ep.name)
            ep.batcher = MicroBatcher(
                ep.name, max_batch_size=ep.config.max_batch_size, max_batch_wait_ms=ep.config.max_batch_wait_ms,
                max_queue=ep.config.max_queue, sink=self.sink, on_batch=self._on_batch_for(ep.name),
                shadow=shadow, shadow_endpoint=shadow_name, shadow_sample_rate=ep.config.shadow_sample_rate,
                shadow_window_ms=ep.config.shadow_window_ms, shadow_max_rows=ep.config.shadow_max_rows,
                shadow_worker=self._shadow_worker(ep, shadow_name) if shadow_name else None)
            ep.batcher.start()
            if hasattr(ep.router, "poll_forever"):  # AliasRouter, PolicyRouter
                self._tasks.append(asyncio.get_running_loop().create_task(ep.router.poll_forever()))
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            for task in self._tasks:
                task.cancel()
            for ep in self.endpoints.values():
                if ep.batcher is not None:
                    await ep.batcher.close()
            if self.sink is not None:
                await asyncio.to_thread(self.sink.close)

    def _shadow_worker(self, ep: Endpoint, shadow_endpoint: str) -> ShadowWorker | None:
        """A worker process for the endpoint's shadows (``shadow_process``), when its router's loader and the
        prediction log can be opened there; otherwise the shadows score on the server's shadow thread."""
        load = getattr(ep.router, "loader", None)
        reopener = getattr(self.sink, "reopener", None)
        if not ep.config.shadow_process or load is None or reopener is None:
            return None
        try:
            return ShadowWorker(ShadowWorkerSpec(ep.name, shadow_endpoint, load, reopener()))
        except Exception as exc:  # noqa: BLE001 - e.g. a loader that does not pickle: the thread still works
            log.warning("endpoint %s: shadows score on the server's thread, not in a worker process (%s: %s)",
                        ep.name, type(exc).__name__, exc)
            return None

    def _on_batch_for(self, name: str) -> Any:
        rows_h, reqs_h, key = self.m_batch_rows, self.m_batch_reqs, (name,)
        # A weighted split draws once per batch (PolicyRouter.next_batch): one model call per batch.
        next_batch = getattr(self.endpoints[name].router, "next_batch", None)
        if next_batch is not None:
            next_batch()  # from the first request on, not only from the first batch

        def on_batch(rows: int, requests: int) -> None:
            rows_h.observe(key, rows)
            reqs_h.observe(key, requests)
            if next_batch is not None:
                next_batch()

        return on_batch

    def _sink_lag(self) -> dict[tuple[str, ...], float]:
        lag = getattr(self.sink, "lag_seconds", None)
        try:
            return {(): float(lag()) if callable(lag) else 0.0}
        except Exception:
            return {(): -1.0}

    # ------------------------------------------------------------ other routes

    def _routes(self) -> list[Route]:
        return [
            Route("/v2/health/live", self._live),
            Route("/v2/health/ready", self._ready),
            Route("/v2", self._server_meta),
            Route("/v2/models/{name}", self._model_meta),
            Route("/v2/models/{name}/versions/{version}", self._model_meta),
            Route("/v2/models/{name}/ready", self._model_ready),
            Route("/v2/models/{name}/versions/{version}/ready", self._model_ready),
            Route("/v2/models/{name}/feedback", self._feedback, methods=["POST"]),
            Route("/feedback", self._feedback, methods=["POST"]),
            Route("/ping", self._ping),
            Route("/health", self._health),
            Route("/version", self._version_route),
            Route("/metrics", self._metrics),
            Route("/openapi.json", self._openapi_route),
            Route("/docs", self._docs),
        ]

    async def _live(self, request: Request) -> Response:
        return _json({"live": True})

    async def _ready(self, request: Request) -> Response:
        return _json({"ready": self.ready}, 200 if self.ready else 503)

    async def _server_meta(self, request: Request) -> Response:
        return _json({"name": "loopml", "version": self.version, "extensions": ["model_repository_health"]})

    def _served(self, request: Request) -> tuple[Endpoint, ServedModel]:
        name = request.path_params["name"]
        ep = self.endpoints.get(name)
        if ep is None:
            raise HTTPException(404, f"no model named {name!r} is served here; served: {sorted(self.endpoints)}")
        served = ep.router.models()[0]
        version = request.path_params.get("version")
        if version is not None and version not in {s.version_str for s in ep.router.models()}:
            raise HTTPException(404, f"model {name!r} version {version!r} is not served here; "
                                     f"serving version {served.version_str}")
        return ep, served

    async def _model_meta(self, request: Request) -> Response:
        ep, s = self._served(request)
        return _json({"name": ep.name, "versions": [m.version_str for m in ep.router.models()],
                      "platform": "sklearn", "inputs": s.metadata_inputs(), "outputs": s.metadata_outputs(),
                      "parameters": {"model_name": s.name, "model_version": s.version_str,
                                     "artifact_digest": s.digest, "max_batch_size": ep.config.max_batch_size,
                                     "max_rows": ep.config.max_rows}})

    async def _model_ready(self, request: Request) -> Response:
        ep, _ = self._served(request)
        return _json({"name": ep.name, "ready": self.ready}, 200 if self.ready else 503)

    async def _feedback(self, request: Request) -> Response:
        """True labels by request id, one (``{"request_id", "label"}``) or many (a list, or ``{"feedback": [...]}``).

        Stored beside the prediction log (``PredictionSink.record_feedback``), joined later by request id;
        the write runs off the event loop. ``/feedback`` is for the first endpoint, like ``/invocations``.
        """
        name = request.path_params.get("name")
        ep = self.default if name is None else self.endpoints.get(name)
        if ep is None:
            return _json({"error": f"no model named {name!r} is served here; served: {sorted(self.endpoints)}",
                          "field": "model", "rule": "not_found"}, 404)
        store = getattr(self.sink, "record_feedback", None)
        if store is None:
            return _json({"error": "this server keeps no prediction log (started with --no-log?), so it cannot "
                                   "store feedback; use `loopml predictions feedback` instead",
                          "field": None, "rule": "unavailable"}, 501)
        try:
            ctype = request.headers.get("content-type")
            if ctype is not None and "json" not in ctype and not ctype.startswith("*/*"):
                raise BadRequest(f"content type {ctype!r} is not supported; send application/json",
                                 field="content-type", rule="content_type", status=415)
            clen = request.headers.get("content-length")
            body = await self._read_body(request.receive, clen.encode() if clen else None, ep.config.max_body_bytes)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"the body is not valid JSON: {exc}", rule="json") from None
            items = _feedback_items(payload)
            result = await asyncio.to_thread(store, ep.name, items)
        except BadRequest as exc:
            return _json({"error": str(exc), "field": exc.field, "rule": exc.rule}, exc.status)
        except ValidationError as exc:  # record_feedback's own checks (a missing label, a bad ts)
            return _json(exc.to_dict(), 400)
        except _ClientGone:
            return Response(status_code=400)
        rows = int(getattr(result, "rows", len(items)))
        self.m_feedback.inc((ep.name,), rows)
        return _json({"endpoint": ep.name, "rows": rows})

    async def _ping(self, request: Request) -> Response:
        return Response("\n", 200 if self.ready else 503, media_type="application/json")

    async def _health(self, request: Request) -> Response:
        return _json({"status": "ok" if self.ready else "starting"}, 200 if self.ready else 503)

    async def _version_route(self, request: Request) -> Response:
        return Response(self.version, media_type="text/plain")

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def _openapi_route(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = orjson.dumps(openapi_document(self.version, self.endpoints))
        return Response(self._openapi, media_type="application/json")

    async def _docs(self, request: Request) -> Response:
        # No Swagger UI: it would come from a CDN, and clusters are often air-gapped.
        return HTMLResponse("<!doctype html><title>loopml model server</title><h1>loopml model server</h1>"
                            "<p>API description: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>")


_FEEDBACK_KEYS = frozenset({"request_id", "label", "row", "ts"})


def _feedback_items(payload: Any) -> list[dict[str, Any]]:
    """The label records of a feedback body, each checked (the error names the item and the field)."""
    if isinstance(payload, dict) and "feedback" in payload:
        payload = payload["feedback"]
    elif isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload:
        raise BadRequest("feedback must be {\"request_id\", \"label\"}, a non-empty list of them, or "
                         "{\"feedback\": [...]}", field="feedback", rule="format")
    for i, item in enumerate(payload):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with request_id and label", field=where, rule="format")
        for key in ("request_id", "label"):
            if item.get(key) is None:
                raise BadRequest(f"{where} has no {key!r}", field=f"{where}.{key}", rule="missing")
        rid = item["request_id"]
        if not isinstance(rid, str) or not rid:
            raise BadRequest(f"{where}.request_id must be a non-empty string, got {rid!r}"[:200],
                             field=f"{where}.request_id", rule="type")
        if isinstance(item["label"], (dict, list)):
            raise BadRequest(f"{where}.label must be a single value (a class or a number)",
                             field=f"{where}.label", rule="type")
        row = item.get("row", 0)
        if not isinstance(row, int) or isinstance(row, bool) or row < 0:
            raise BadRequest(f"{where}.row must be a non-negative integer (the row within the request)",
                             field=f"{where}.row", rule="type")
        unknown = set(item) - _FEEDBACK_KEYS
        if unknown:
            raise BadRequest(f"{where} has unknown field(s) {sorted(unknown)}; known: {sorted(_FEEDBACK_KEYS)}",
                             field=f"{where}.{sorted(unknown)[0]}", rule="unknown")
    return payload


def _loads_with_nan(body: bytes, error: Exception) -> Any:
    """Strict JSON failed: accept ``NaN`` (Python's ``json.dumps`` writes it for a missing value), never infinity.

    A NaN then meets the contract like a null (``nullable`` names the field); only the error path pays.
    """
    import json

    def constant(name: str) -> float:
        if name == "NaN":
            return float("nan")
        raise BadRequest(f"the body is not valid JSON: {name} is not a number; send finite numbers "
                         "(or null for a missing value)", rule="json")

    def finite(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise BadRequest(f"the body is not valid JSON: {text[:40]} is too large for a double", rule="json")
        return value

    try:
        return json.loads(body, parse_constant=constant, parse_float=finite)
    except BadRequest:
        raise
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"the body is not valid JSON: {error}", rule="json") from None


class _ClientGone(Exception):
    """The client disconnected before sending its body."""


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _json({"error": exc.detail, "field": None, "rule": "not_found" if exc.status_code == 404 else "http"},
                 exc.status_code)


# ------------------------------------------------------------------- factory


def _router_for(item: Any, workspace: Any, config: ServeConfig) -> tuple[str, Any]:
    """(default endpoint name, router) for a model, a router or a model reference."""
    if isinstance(item, ServedModel):
        return item.name, SingleModelRouter(item)
    if hasattr(item, "route") and hasattr(item, "models"):
        return getattr(item, "endpoint", None) or item.models()[0].name, item
    if hasattr(item, "estimator"):
        return item.name, SingleModelRouter(item)
    if isinstance(item, str):
        if workspace is None:
            raise ValidationError(f"model reference {item!r} needs a workspace to load from",
                                  field="workspace", rule="required")
        from loopml.kernel.types import ModelRef
        from loopml.register import load_model, resolve

        if "@" not in item and "/" not in item and _is_endpoint(workspace, item):
            from loopml.serve._policy import (
                PolicyRouter,  # a deploy endpoint: route by its traffic policy
            )

            return item, PolicyRouter.for_endpoint(workspace, item, poll_interval_s=config.poll_interval_s)
        ref = ModelRef.parse(item)
        if ref.alias is None and ref.version is not None:
            return ref.name, SingleModelRouter(load_model(workspace, item))

        def probe() -> tuple[int, str]:
            record = resolve(workspace, item)
            return int(record.version), str(record.artifact_digest)

        def load(token: Any) -> Any:
            return load_model(workspace, f"{ref.name}/{token[0]}")

        return ref.name, AliasRouter(probe, load, poll_interval_s=config.poll_interval_s)
    raise ValidationError(f"cannot serve {type(item).__name__}: pass a LoadedModel, a ModelRouter or a "
                          "model reference such as 'churn@champion'", field="models", rule="type")


def _is_endpoint(workspace: Any, name: str) -> bool:
    """Whether ``name`` is a deploy endpoint (an endpoint wins over a model of the same name)."""
    from loopml.deploy import get_endpoint

    try:
        get_endpoint(workspace, name)
    except NotFoundError:
        return False
    return True


def create_app(
    models_or_refs: Any,
    *,
    workspace: Any = None,
    sink: PredictionSink | None = None,
    settings: Any = None,
    endpoint_settings: Mapping[str, Any] | None = None,
) -> ServeApp:
    """The ASGI app serving one or more models (run it with uvicorn).

    Args:
        models_or_refs: a ``LoadedModel``, a ``ModelRouter``, a model reference
            (``"churn@champion"``: hot-swapped when the alias moves; ``"churn/3"``:
            fixed), an endpoint name (``loopml deploy``: routed by its traffic policy,
            re-read when it changes), or a list of those, or a dict endpoint name -> one of those.
            The first one also answers MLflow's ``/invocations``.
        workspace: where model references are resolved and loaded from.
        sink: the prediction log (:class:`PredictionSink`), or ``None``.
        settings: a :class:`ServeConfig`, ``ServeSettings`` or dict: the default limits.
        endpoint_settings: per endpoint overrides, endpoint name -> same kinds.
    """
    config = ServeConfig.coerce(settings)
    if isinstance(models_or_refs, Mapping):
        items = list(models_or_refs.items())
    elif isinstance(models_or_refs, (list, tuple)):
        items = [(None, m) for m in models_or_refs]
    else:
        items = [(None, models_or_refs)]
    endpoints: dict[str, Endpoint] = {}
    for name, item in items:
        default_name, router = _router_for(item, workspace, config)
        ep_name = name or default_name
        if ep_name in endpoints:
            raise ValidationError(f"endpoint {ep_name!r} is given twice", field="models", rule="unique")
        ep_config = config
        if endpoint_settings and ep_name in endpoint_settings:
            ep_config = ServeConfig.coerce(endpoint_settings[ep_name]) if not isinstance(
                endpoint_settings[ep_name], dict) else ServeConfig.coerce(config, **endpoint_settings[ep_name])
        endpoints[ep_name] = Endpoint(ep_name, router, ep_config, key_field=getattr(router, "key_field", None))
    return ServeApp(endpoints, sink)


# Re-exported for type checkers: the router Protocol lives in _router.
_ = ModelRouter
