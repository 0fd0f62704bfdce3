"""A Python client for a remote loopml control plane, with the service layer's verbs.

    client = RemoteClient.from_settings()      # LOOPML_SERVER_URL + LOOPML_TOKEN
    client.list_runs(filter="metrics.acc > 0.8", order_by=["metrics.acc DESC"])
    client.set_alias("churn", "challenger", 3, reason="better recall")
    client.audit_log(action="model.alias")

Results are the JSON the server sends (the records' ``to_dict()`` shape).
Errors come back as the same loopml exceptions the local services raise:
404 → ``NotFoundError``, 422 → ``ValidationError`` (with ``field`` and
``rule``), 401 → ``NotAuthenticated``, 403 → ``PermissionDenied``, 409 →
``AlreadyExistsError`` or the conflicting state's error. Importing this module
does not import FastAPI. The token is sent only in the ``Authorization``
header and never appears in ``repr`` or error messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from loopml.kernel import exceptions as E
from loopml.kernel.config import get_settings

__all__ = ["RemoteClient"]

API_PREFIX = "/api/v1"
_BY_TYPE: dict[str, type[E.LoopmlError]] = {
    name: getattr(E, name) for name in E.__all__ if isinstance(getattr(E, name), type)
}
_BY_STATUS: dict[int, type[E.LoopmlError]] = {
    400: E.ValidationError, 401: E.PermissionDenied, 403: E.PermissionDenied, 404: E.NotFoundError,
    409: E.AlreadyExistsError, 413: E.ValidationError, 422: E.ValidationError, 503: E.StoreError,
}


def _q(part: object) -> str:
    """One URL path segment, escaped (a name can never add a segment)."""
    return quote(str(part), safe="")


def _error(response: httpx.Response) -> E.LoopmlError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("error") or f"HTTP {response.status_code} from {response.request.url.path}")
    kind = str(body.get("type") or "")
    if response.status_code == 401 or kind == "NotAuthenticated":
        from loopml.governance.identity import NotAuthenticated

        return NotAuthenticated(message)
    cls = _BY_TYPE.get(kind) or _BY_STATUS.get(response.status_code, E.LoopmlError)
    if issubclass(cls, E.ValidationError) and not issubclass(cls, E.BadRequest):
        return cls(message, field=body.get("field"), rule=body.get("rule"))
    if cls in (E.MissingExtraError, E.StepFailed, E.BadRequest, E.GateFailed, E.ContractViolation):
        return E.LoopmlError(message)  # constructors with other signatures: keep the message
    return cls(message)


class RemoteClient:
    """The control plane over HTTP: datasets and contracts, runs, models, cards, deployments, the prediction log,
    monitors, alerts, triggers, approvals, lineage, traces, audit, privacy, users and tokens."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise E.ConfigError(f"server URL {url!r} is invalid: expected http(s)://host:port")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout,
                                  transport=transport)

    @classmethod
    def from_settings(cls, **kwargs: Any) -> RemoteClient:
        """A client for ``LOOPML_SERVER_URL`` with ``LOOPML_TOKEN``."""
        settings = get_settings()
        if not settings.server_url:
            raise E.ConfigError("no server to talk to: set LOOPML_SERVER_URL (and LOOPML_TOKEN)")
        return cls(settings.server_url, settings.token, **kwargs)

    def __repr__(self) -> str:
        return f"RemoteClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                 content: bytes | Iterator[bytes] | None = None, headers: dict[str, str] | None = None,
                 timeout: float | None | httpx.Timeout | object = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=clean, json=json, content=content, headers=headers,
                                          timeout=timeout)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise E.StoreError(f"loopml server {self.url} is unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params).json()

    def _pages(self, path: str, *, limit: int | None, **params: Any) -> list[dict[str, Any]]:
        """Follow ``next_offset`` until ``limit`` items (or all, for ``None``)."""
        items: list[dict[str, Any]] = []
        for item in self._iter(path, **params):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    def _iter(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        offset: int | None = 0
        while offset is not None:
            page = self._get(path, **params, limit=200, offset=offset)
            yield from page["items"]
            offset = page["next_offset"]

    # -- identity -------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        return self._get("/whoami")  # type: ignore[no-any-return]

    # -- datasets -------------------------------------------------------------

    def list_datasets(self) -> list[dict[str, Any]]:
        return self._pages("/datasets", limit=None)

    def list_dataset_versions(self, name: str) -> list[dict[str, Any]]:
        return self._pages(f"/datasets/{_q(name)}/versions", limit=None)

    def get_dataset_version(self, ref: str) -> dict[str, Any]:
        return self._get(self._version_path(ref))  # type: ignore[no-any-return]

    def ingest(self, path: str | Path, name: str, *, format: str | None = None,
               description: str | None = None, target: str | None = None) -> dict[str, Any]:
        """Upload a CSV or Parquet file as a new version of ``name``; the answer has its ``validation`` report."""
        source = Path(path)
        fmt = format or ("parquet" if source.suffix.lower() in (".parquet", ".pq") else "csv")
        ctype = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise E.DataError(f"{source}: cannot read the file: {exc.strerror}") from exc
        return self._request("POST", f"/datasets/{_q(name)}/versions", content=data,
                             params={"format": fmt, "description": description, "target": target,
                                     "filename": source.name},
                             headers={"Content-Type": ctype}).json()  # type: ignore[no-any-return]

    @staticmethod
    def _version_path(ref: str) -> str:
        name, _, version = ref.partition("@")
        return f"/datasets/{_q(name)}/versions/{_q(version or 'latest')}"

    def get_contract(self, name: str) -> dict[str, Any]:
        """The dataset's contract (``Contract.to_dict()`` shape)."""
        return self._get(f"/datasets/{_q(name)}/contract")  # type: ignore[no-any-return]

    def set_contract(self, name: str, contract: Any, *, reason: str | None = None) -> dict[str, Any]:
        """Replace the dataset's contract (a ``Contract`` or its dict); the server checks it again."""
        body = {"contract": contract.to_dict() if hasattr(contract, "to_dict") else contract, "reason": reason}
        return self._request("PUT", f"/datasets/{_q(name)}/contract", json=body).json()  # type: ignore[no-any-return]

    def validate_dataset(self, ref: str, contract: Any = None) -> dict[str, Any]:
        """``NAME[@VERSION]`` against its stored contract, or ``contract``; the report's ``to_dict()``."""
        given = contract.to_dict() if hasattr(contract, "to_dict") else contract
        return self._request("POST", f"{self._version_path(ref)}/validate",
                             json={"contract": given}).json()  # type: ignore[no-any-return]

    def dataset_profile(self, ref: str) -> dict[str, Any]:
        """``{"ref", "profile", "issues"}`` of ``NAME[@VERSION]``."""
        return self._get(f"{self._version_path(ref)}/profile")  # type: ignore[no-any-return]

    def dataset_profile_html(self, ref: str) -> tuple[str, str]:
        """``(file name, html)``: the self-contained profile report of ``NAME[@VERSION]``."""
        response = self._request("GET", f"{self._version_path(ref)}/profile", params={"format": "html"})
        disposition = response.headers.get("content-disposition", "")
        filename = disposition.partition('filename="')[2].rstrip('"') or "profile.html"
        return Path(filename).name, response.text

    # -- runs -----------------------------------------------------------------

    def list_runs(self, *, experiment: str | None = None, kind: str | None = None, status: str | None = None,
                  parent_id: str | None = None, filter: str | None = None,
                  order_by: list[str] | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        return self._pages("/runs", limit=limit, experiment=experiment, kind=kind, status=status,
                           parent_id=parent_id, filter=filter, order_by=order_by)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._get(f"/runs/{_q(run_id)}")  # type: ignore[no-any-return]

    def compare_runs(self, run_ids: list[str]) -> dict[str, Any]:
        return self._get("/runs/compare", ids=list(run_ids))  # type: ignore[no-any-return]

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float | None, float]]:
        points = self._get(f"/runs/{_q(run_id)}/metrics/{_q(key)}")["points"]
        return [(p["step"], p["value"], p["ts"]) for p in points]

    # -- models ---------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        return self._pages("/models", limit=None)

    def get_model(self, name: str) -> dict[str, Any]:
        return self._get(f"/models/{_q(name)}")  # type: ignore[no-any-return]

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        return self._pages(f"/models/{_q(name)}/versions", limit=None)

    def resolve(self, ref: str) -> dict[str, Any]:
        return self._get("/models/resolve", ref=ref)  # type: ignore[no-any-return]

    def list_aliases(self, name: str) -> list[dict[str, Any]]:
        return self._get(f"/models/{_q(name)}/aliases")  # type: ignore[no-any-return]

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        return self._pages(f"/models/{_q(name)}/aliases/history", limit=None, alias=alias)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None) -> dict[str, Any]:
        return self._request("PUT", f"/models/{_q(name)}/aliases/{_q(alias)}",
                             json={"version": version, "reason": reason}).json()  # type: ignore[no-any-return]

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._request("DELETE", f"/models/{_q(name)}/aliases/{_q(alias)}",
                             params={"reason": reason}).json()  # type: ignore[no-any-return]

    def _card_path(self, ref: str) -> str:
        """``NAME/VERSION`` as is; ``NAME@ALIAS`` resolved by the server first."""
        name, slash, version = ref.partition("/")
        if not slash:
            found = self.resolve(ref)
            name, version = found["name"], str(found["version"])
        return f"/models/{_q(name)}/versions/{_q(version)}/card"

    def model_card(self, ref: str, *, format: str = "json") -> Any:
        """A model version's card: its data as a dict (``json``), or Markdown (``md``) / HTML (``html``) text."""
        response = self._request("GET", self._card_path(ref), params={"format": format})
        return response.json() if format == "json" else response.text

    def set_card_fields(self, ref: str, *, reason: str | None = None, **fields: str | None) -> dict[str, Any]:
        """Edit a card's ``owner``, ``intended_use``, ``limitations``; the card's data after the edit."""
        return self._request("PATCH", self._card_path(ref),
                             json={**fields, "reason": reason}).json()  # type: ignore[no-any-return]

    # -- deployments ----------------------------------------------------------

    def list_endpoints(self) -> list[dict[str, Any]]:
        return self._pages("/endpoints", limit=None)

    def get_endpoint(self, name: str) -> dict[str, Any]:
        return self._get(f"/endpoints/{_q(name)}")  # type: ignore[no-any-return]

    def deploy(self, endpoint: str, model_ref: str, *, strategy: str = "direct",
               override_reason: str | None = None, **options: Any) -> dict[str, Any]:
        body = {"model_ref": model_ref, "strategy": strategy, "override_reason": override_reason, "options": options}
        return self._request("POST", f"/endpoints/{_q(endpoint)}/deploy", json=body).json()  # type: ignore[no-any-return]

    def traffic_history(self, endpoint: str) -> list[dict[str, Any]]:
        return self._pages(f"/endpoints/{_q(endpoint)}/traffic", limit=None)

    def served_between(self, endpoint: str, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        """Which versions served ``endpoint`` in ``[since, until]`` (ISO times or ages such as ``1h``)."""
        return self._get(f"/endpoints/{_q(endpoint)}/served", since=since, until=until)  # type: ignore[no-any-return]

    def who_answered(self, request_id: str, *, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every logged row of ``request_id``: the answering version's first, then any shadow's."""
        return self._pages(f"/requests/{_q(request_id)}/answers", limit=None, endpoint=endpoint)

    def get_rollout(self, endpoint: str) -> dict[str, Any] | None:
        return self._get(f"/endpoints/{_q(endpoint)}/rollout")["rollout"]  # type: ignore[no-any-return]

    def _rollout(self, endpoint: str, verb: str, reason: str | None) -> dict[str, Any]:
        body = {"reason": reason} if reason is not None else None
        return self._request("POST", f"/endpoints/{_q(endpoint)}/rollout/{verb}", json=body).json()  # type: ignore[no-any-return]

    def promote(self, endpoint: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._rollout(endpoint, "promote", reason)

    def rollback(self, endpoint: str, *, reason: str) -> dict[str, Any]:
        return self._rollout(endpoint, "rollback", reason)

    def pause(self, endpoint: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._rollout(endpoint, "pause", reason)

    def resume(self, endpoint: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._rollout(endpoint, "resume", reason)

    def analyze_rollout(self, endpoint: str) -> dict[str, Any]:
        """Analyse the endpoint's running rollout once, now, and apply the decision; the decision's dict."""
        return self._request("POST", f"/endpoints/{_q(endpoint)}/rollout/analyze").json()  # type: ignore[no-any-return]

    # -- the prediction log -----------------------------------------------------

    def query_predictions(self, endpoint: str, *, since: str | None = None, until: str | None = None,
                          model_version: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Logged rows of ``endpoint`` in ``[since, until)``, oldest first, as JSON records (NaN → ``None``)."""
        return self._pages(f"/endpoints/{_q(endpoint)}/predictions", limit=limit, since=since, until=until,
                           model_version=model_version)

    def export_predictions(self, endpoint: str, path: str | Path, *, since: str | None = None,
                           until: str | None = None, model_version: int | None = None) -> int:
        """Download every row of the window to ``path`` (``.parquet``/``.pq`` or ``.csv``, as the suffix says);
        returns the number of rows."""
        target = Path(path)
        fmt = "csv" if target.suffix.lower() == ".csv" else "parquet"
        response = self._request("GET", f"/endpoints/{_q(endpoint)}/predictions/export",
                                 params={"format": fmt, "since": since, "until": until,
                                         "model_version": model_version})
        target.write_bytes(response.content)
        return int(response.headers.get("x-loopml-rows", "0"))

    def count_predictions(self, endpoint: str, *, since: str | None = None, until: str | None = None,
                          model_version: int | None = None) -> int:
        return int(self._get(f"/endpoints/{_q(endpoint)}/predictions/count", since=since, until=until,
                             model_version=model_version)["count"])

    def record_feedback(self, endpoint: str, path: str | Path) -> dict[str, Any]:
        """Upload a CSV or Parquet file of true labels (``request_id``, ``label`` [, ``ts``, ``row``])."""
        source = Path(path)
        fmt = "parquet" if source.suffix.lower() in (".parquet", ".pq") else "csv"
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise E.ValidationError(f"--file {str(source)!r}: cannot read it: {exc.strerror}", field="file",
                                    rule="exists") from exc
        return self._request("POST", f"/endpoints/{_q(endpoint)}/feedback", content=data, params={"format": fmt},
                             headers={"Content-Type": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"},
                             ).json()  # type: ignore[no-any-return]

    def export_model(self, model_ref: str, output: str | Path | None = None, *, format: str = "onnx",
                     tolerance: float = 1e-4, sample: str | Path | None = None,
                     allow_parity_failure: bool = False) -> dict[str, Any]:
        """Export on the server (parity checked there, recorded), then download the file to ``output``.

        The bytes are checked against the export's sha256 before the file is written; the result's
        ``path`` is ``output`` (default ``./NAME-VERSION.FORMAT``).
        """
        version = self.resolve(model_ref)
        name, number = version["name"], int(version["version"])
        data, headers = None, None
        if sample is not None:
            source = Path(sample)
            is_csv = source.suffix.lower() == ".csv"
            try:
                data = source.read_bytes()
            except OSError as exc:
                raise E.ValidationError(f"--sample {str(source)!r}: cannot read it: {exc.strerror}", field="sample",
                                        rule="exists") from exc
            headers = {"Content-Type": "text/csv" if is_csv else "application/vnd.apache.parquet"}
        result: dict[str, Any] = self._request(
            "POST", f"/models/{_q(name)}/versions/{number}/export", content=data, headers=headers,
            params={"format": format, "tolerance": tolerance, "allow_parity_failure": allow_parity_failure}).json()
        target = Path(output) if output is not None else Path(f"{name}-{number}.{format}")
        self._download(f"/models/{_q(name)}/versions/{number}/exports/{result['digest']}", result["digest"], target,
                       what=f"the export of {name}/{number}")
        return {**result, "path": str(target.resolve())}

    def _download(self, path: str, digest: str, target: Path, *, what: str) -> None:
        """GET ``path`` into ``target``, written only once its bytes hash to ``digest`` (sha256)."""
        import hashlib

        body = self._request("GET", path, timeout=None).content
        if hashlib.sha256(body).hexdigest() != digest:
            raise E.IntegrityError(f"{what} arrived corrupted: its sha256 does not match {digest[:12]}; "
                                   f"nothing was written to {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(body)
        partial.replace(target)

    def score_file(self, model_ref: str, input: str | Path, output: str | Path, *,  # noqa: A002
                   reject: str | Path | None = None, batch_rows: int = 65536) -> dict[str, Any]:
        """Score a CSV or Parquet file on the server (``loopml score``): the file is uploaded, scored and recorded
        there, and the output (and any rejected rows) downloaded here, each checked against its sha256.

        The result is :class:`~loopml.serve.batch.BatchResult`'s shape, with this machine's paths.
        """
        source, target = Path(input), Path(output)
        formats = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
        out_format = formats.get(target.suffix.lower())
        rejects = Path(reject) if reject is not None else target.with_name(f"{target.stem}.rejects{target.suffix}")
        for field, path in (("input", source), ("output", target), ("reject", rejects)):
            if path.suffix.lower() not in formats:
                raise E.ValidationError(f"{field} {str(path)!r}: unsupported format {path.suffix or '(none)'!r}; "
                                        "use .parquet or .csv", field=field, rule="format")
        if rejects.suffix.lower() != target.suffix.lower():
            raise E.ValidationError(f"reject {str(rejects)!r}: a server writes rejects in the output's format "
                                    f"({target.suffix})", field="reject", rule="format")
        if not source.is_file():
            raise E.NotFoundError(f"input file {str(source)!r} does not exist")
        fmt = formats[source.suffix.lower()]

        def chunks() -> Iterator[bytes]:
            with source.open("rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        result: dict[str, Any] = self._request(
            "POST", "/prediction-batches", content=chunks(), timeout=None,
            params={"model": model_ref, "format": fmt, "output_format": out_format, "batch_rows": batch_rows,
                    "filename": source.name},
            headers={"Content-Type": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                     "Content-Length": str(source.stat().st_size)}).json()
        batch = result["batch_id"]
        self._download(f"/prediction-batches/{batch}/files/{result['output_digest']}", result["output_digest"], target,
                       what=f"the output of batch {batch}")
        if result["reject_digest"]:
            self._download(f"/prediction-batches/{batch}/files/{result['reject_digest']}", result["reject_digest"],
                           rejects, what=f"the rejected rows of batch {batch}")
        return {**result, "input_path": str(source.resolve()), "output_path": str(target.resolve()),
                "reject_path": str(rejects.resolve()) if result["reject_digest"] else None}

    def compact(self, endpoint: str, day: str) -> dict[str, Any]:
        """Merge ``endpoint``'s small log files of ``day`` (``YYYY-MM-DD``), one per hour."""
        return self._request("POST", f"/endpoints/{_q(endpoint)}/predictions/compact",
                             json={"date": str(day)}).json()  # type: ignore[no-any-return]

    # -- monitors ----------------------------------------------------------------

    def define_monitor(self, spec: Any) -> dict[str, Any]:
        """Create or replace a monitor from its spec: a mapping, a ``MonitorSpec``, or a YAML file (read here)."""
        if isinstance(spec, (str, Path)) or hasattr(spec, "to_dict"):
            from loopml.monitor import load_spec

            spec = load_spec(spec).to_dict()  # a bad spec fails here, before any request
        return self._request("POST", "/monitors", json={"spec": spec}).json()  # type: ignore[no-any-return]

    def list_monitors(self) -> list[dict[str, Any]]:
        return self._pages("/monitors", limit=None)

    def get_monitor(self, name: str) -> dict[str, Any]:
        return self._get(f"/monitors/{_q(name)}")  # type: ignore[no-any-return]

    def run_monitor(self, name_or_endpoint: str) -> dict[str, Any]:
        """Run a monitor (or the endpoint's default one) now; the report."""
        return self._request("POST", f"/monitors/{_q(name_or_endpoint)}/run").json()  # type: ignore[no-any-return]

    def list_reports(self, endpoint: str | None = None, limit: int | None = 50) -> list[dict[str, Any]]:
        """Reports, newest first, as summaries (``report`` is ``None``: :meth:`get_report` has it)."""
        return self._pages("/reports", limit=limit, endpoint=endpoint)

    def get_report(self, report_id: int) -> dict[str, Any]:
        return self._get(f"/reports/{_q(report_id)}")  # type: ignore[no-any-return]

    def report_html(self, report_id: int) -> str:
        return self._request("GET", f"/reports/{_q(report_id)}/html").text

    # -- alerts, triggers ---------------------------------------------------------

    def list_alerts(self, *, status: str | None = None, endpoint: str | None = None,
                    limit: int | None = 100) -> list[dict[str, Any]]:
        return self._pages("/alerts", limit=limit, status=status, endpoint=endpoint)

    def ack_alert(self, alert_id: int, *, note: str | None = None) -> dict[str, Any]:
        return self._request("POST", f"/alerts/{_q(alert_id)}/ack", json={"note": note}).json()  # type: ignore[no-any-return]

    def list_triggers(self) -> list[dict[str, Any]]:
        return self._pages("/triggers", limit=None)

    def add_trigger(self, name: str, kind: str, *, recipe: dict[str, Any], recipe_path: str | None = None,
                    config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add a trigger that runs ``recipe`` (a parsed recipe spec) when it fires."""
        body = {"name": name, "kind": kind, "recipe": recipe, "recipe_path": recipe_path, "config": config or {}}
        return self._request("POST", "/triggers", json=body).json()  # type: ignore[no-any-return]

    def set_trigger_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        return self._request("POST", f"/triggers/{_q(name)}/{verb}").json()  # type: ignore[no-any-return]

    def list_run_requests(self, *, status: str | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        return self._pages("/run-requests", limit=limit, status=status)

    def fire_trigger(self, name: str, *, reason: str | None = None,
                     context: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("POST", f"/triggers/{_q(name)}/fire",
                             json={"reason": reason, "context": context}).json()  # type: ignore[no-any-return]

    # -- runs on the server's scheduler ----------------------------------------------

    def submit_run(self, recipe: str | Path | dict[str, Any], *, reason: str | None = None) -> dict[str, Any]:
        """Queue a recipe (a YAML path, or a spec as a mapping) for the server's scheduler: a run request.

        What the recipe reads from this machine goes with it: a local ``data.source`` file is uploaded as a
        version of ``data.dataset`` (the run trains on that version), and a local ``data.contract`` file is sent
        inline. Other paths are read where the scheduler runs.
        """
        from loopml.recipes import load_spec, parse_spec

        spec = parse_spec(recipe, origin="recipe") if isinstance(recipe, dict) else load_spec(recipe)
        data = spec.data
        updates: dict[str, Any] = {}
        if data.source and "://" not in data.source and Path(data.source).is_file():
            uploaded = self.ingest(data.source, data.dataset, target=data.target)
            updates.update(source=None, version=int(uploaded["version"]))
        if isinstance(data.contract, str) and Path(data.contract).is_file():
            import yaml

            updates["contract"] = yaml.safe_load(Path(data.contract).read_text())
        if updates:
            spec = spec.model_copy(update={"data": data.model_copy(update=updates)})
        body = {"recipe": spec.model_dump(by_alias=True, mode="json"), "reason": reason}
        return self._request("POST", "/run-requests", json=body).json()  # type: ignore[no-any-return]

    def get_run_request(self, request_id: int) -> dict[str, Any]:
        return self._get(f"/run-requests/{int(request_id)}")  # type: ignore[no-any-return]

    def wait_run_request(self, request_id: int, *, timeout_s: float | None = None, poll_s: float = 1.0,
                         on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll a run request until it has ended (``succeeded`` or ``failed``); ``on_poll`` sees each state.

        Raises:
            TriggerError: ``timeout_s`` passed first (the request goes on: wait again, or look it up later).
        """
        import time

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            request = self.get_run_request(request_id)
            if on_poll is not None:
                on_poll(request)
            if request["status"] in ("succeeded", "failed"):
                return request
            if deadline is not None and time.monotonic() >= deadline:
                raise E.TriggerError(f"run request {request_id} is still {request['status']} after {timeout_s:g} s")
            time.sleep(poll_s)

    def run_recipe(self, recipe: str | Path | dict[str, Any], *, reason: str | None = None,
                   timeout_s: float | None = None) -> dict[str, Any]:
        """Submit a recipe and wait for its run: the result ``loopml run --json`` prints.

        Raises:
            PipelineError: the run failed (the message is the run's error).
        """
        request = self.wait_run_request(self.submit_run(recipe, reason=reason)["id"], timeout_s=timeout_s)
        if request["status"] == "failed":
            raise E.PipelineError(f"run request {request['id']} failed: {request['error']}")
        return request["result"] or {}

    # -- approvals --------------------------------------------------------------

    def list_approvals(self, *, status: str | None = None, model: str | None = None,
                       limit: int | None = 100) -> list[dict[str, Any]]:
        return self._pages("/approvals", limit=limit, status=status, model=model)

    def get_approval(self, request_id: int) -> dict[str, Any]:
        return self._get(f"/approvals/{_q(request_id)}")  # type: ignore[no-any-return]

    def request_approval(self, model_ref: str, *, endpoint: str | None = None,
                         reason: str | None = None) -> dict[str, Any]:
        return self._request("POST", "/approvals", json={"model_ref": model_ref, "endpoint": endpoint,
                                                         "reason": reason}).json()  # type: ignore[no-any-return]

    def _decide(self, request_id: int, verb: str, reason: str) -> dict[str, Any]:
        return self._request("POST", f"/approvals/{_q(request_id)}/{verb}",
                             json={"reason": reason}).json()  # type: ignore[no-any-return]

    def approve(self, request_id: int, *, reason: str) -> dict[str, Any]:
        return self._decide(request_id, "approve", reason)

    def reject(self, request_id: int, *, reason: str) -> dict[str, Any]:
        return self._decide(request_id, "reject", reason)

    def override(self, request_id: int, *, reason: str) -> dict[str, Any]:
        return self._decide(request_id, "override", reason)

    @staticmethod
    def _policy_path(target: str) -> str:
        scope, sep, name = target.partition(":")
        if not sep or scope not in ("model", "endpoint") or not name:
            raise E.ValidationError(f"approval target {target!r} is invalid: expected model:NAME or endpoint:NAME",
                                    field="target", rule="format")
        return f"/approvals/policies/{scope}/{_q(name)}"

    def list_policies(self) -> list[dict[str, Any]]:
        return self._get("/approvals/policies")  # type: ignore[no-any-return]

    def get_policy(self, target: str) -> dict[str, Any]:
        return self._get(self._policy_path(target))  # type: ignore[no-any-return]

    def set_policy(self, target: str, required: int, *, alias: str = "champion",
                   reason: str | None = None) -> dict[str, Any]:
        return self._request("PUT", self._policy_path(target), json={"required": required, "alias": alias,
                                                                     "reason": reason}).json()  # type: ignore[no-any-return]

    # -- lineage and audit ----------------------------------------------------

    def lineage(self, obj: str, *, direction: str = "both", max_depth: int = 50,
                format: str = "json") -> Any:
        response = self._request("GET", "/lineage", params={"object": obj, "direction": direction,
                                                             "max_depth": max_depth, "format": format})
        return response.json() if format == "json" else response.text

    def trace_request(self, request_id: str, *, endpoint: str | None = None, format: str = "json") -> Any:
        """Everything behind one prediction: a dict (``json``) or ``dot`` / ``mermaid`` text."""
        response = self._request("GET", f"/trace/requests/{_q(request_id)}",
                                 params={"endpoint": endpoint, "format": format})
        return response.json() if format == "json" else response.text

    def trace_dataset(self, ref: str, *, format: str = "json") -> Any:
        """Everything downstream of a dataset version ``NAME@VERSION``: a dict or ``dot`` / ``mermaid`` text."""
        response = self._request("GET", f"/trace/datasets/{_q(ref)}", params={"format": format})
        return response.json() if format == "json" else response.text

    def audit_log(self, *, actor: str | None = None, action: str | None = None,
                  object: str | None = None, since: str | None = None, until: str | None = None,
                  limit: int | None = 100, newest_first: bool = True) -> list[dict[str, Any]]:
        return self._pages("/audit", limit=limit, actor=actor, action=action, object=object, since=since,
                           until=until, oldest_first=not newest_first)

    def verify_audit(self) -> list[dict[str, Any]]:
        """The chain's problems; an empty list means intact (as :func:`loopml.metadata.audit.verify_audit`)."""
        return self._get("/audit/verify")["problems"]  # type: ignore[no-any-return]

    def export_audit(self, path: str | Path) -> int:
        """Download the log as JSON Lines to ``path``; returns the number of events."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self._request("GET", "/audit/export").content
        target.write_bytes(data)
        return data.count(b"\n")

    # -- privacy ------------------------------------------------------------------

    def list_retention(self) -> list[dict[str, Any]]:
        return self._get("/privacy/retention")  # type: ignore[no-any-return]

    def set_retention(self, endpoint: str, days: int) -> dict[str, Any]:
        return self._request("PUT", f"/privacy/retention/{_q(endpoint)}", json={"days": days}).json()  # type: ignore[no-any-return]

    def apply_retention(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self._request("POST", "/privacy/retention/apply", json={"endpoint": endpoint}).json()  # type: ignore[no-any-return]

    def erase_subject(self, column: str, value: str, *, endpoint: str | None = None) -> dict[str, Any]:
        """Erase every logged row where ``column`` equals ``value`` (sent in the body, never the URL)."""
        return self._request("POST", "/privacy/erase", json={"column": column, "value": value,
                                                             "endpoint": endpoint}).json()  # type: ignore[no-any-return]

    # -- users and tokens -----------------------------------------------------------

    def list_users(self) -> list[dict[str, Any]]:
        return self._pages("/users", limit=None)

    def get_user(self, name: str) -> dict[str, Any]:
        return self._get(f"/users/{_q(name)}")  # type: ignore[no-any-return]

    def create_user(self, name: str, *, email: str | None = None,
                    roles: dict[str, str | list[str]] | None = None) -> dict[str, Any]:
        return self._request("POST", "/users", json={"name": name, "email": email,
                                                     "roles": roles or {}}).json()  # type: ignore[no-any-return]

    def grant(self, name: str, role: str, project: str = "default") -> dict[str, Any]:
        return self._request("PUT", f"/users/{_q(name)}/roles/{_q(project)}/{_q(role)}").json()  # type: ignore[no-any-return]

    def revoke_role(self, name: str, role: str, project: str = "default") -> dict[str, Any]:
        return self._request("DELETE", f"/users/{_q(name)}/roles/{_q(project)}/{_q(role)}").json()  # type: ignore[no-any-return]

    def disable_user(self, name: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._request("POST", f"/users/{_q(name)}/disable", json={"reason": reason}).json()  # type: ignore[no-any-return]

    def list_tokens(self, user: str | None = None, *, include_inactive: bool = True) -> list[dict[str, Any]]:
        """One user's tokens (their own, or any with ``token.admin``), or every user's (``token.admin``)."""
        path = "/tokens" if user is None else f"/users/{_q(user)}/tokens"
        return self._pages(path, limit=None, active_only=not include_inactive)

    def create_token(self, user: str, *, expires_in_days: int = 90, name: str | None = None) -> dict[str, Any]:
        """A new token for ``user``: ``{"id", "user", "token", "expires_at"}``; the secret is shown this once."""
        return self._request("POST", f"/users/{_q(user)}/tokens", json={"name": name,
                                                                        "expires_in_days": expires_in_days}).json()  # type: ignore[no-any-return]

    def revoke_token(self, token_id: str, *, reason: str | None = None) -> dict[str, Any]:
        return self._request("DELETE", f"/tokens/{_q(token_id)}",  # type: ignore[no-any-return]
                             params={"reason": reason}).json()
