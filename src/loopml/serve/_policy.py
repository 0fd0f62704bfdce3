"""Route an endpoint's requests by its traffic policy: canary, blue-green, shadow, A/B.

A :class:`PolicyRouter` serves a ``loopml.deploy`` endpoint. Invariants:

- **Cheap polling, off the event loop.** Every ``poll_interval_s`` (1 s) one
  small ``SELECT revision`` runs in a worker thread; only when the revision
  moved is the policy read and the new routing table built, also in a thread.
- **Load before switching.** Every version the policy names (``routes``,
  ``standby`` *and* ``shadow``) is loaded and compiled before the switch, so a
  blue-green standby is warm and its switch, like every switch, is one
  attribute assignment of an immutable :class:`RoutingTable`. A request routes
  on one table; in-flight requests finish on the version they got.
- **A failed load keeps the old table** (``last_error``), retried next poll.
- **A standby is health-checked where it is loaded**: a version newly loaded
  as ``standby`` scores a few rows synthesised from its contract through the
  request path (:func:`~loopml.serve._health.check_health`). An exception or a
  wrong-shaped answer marks it unhealthy here (``unhealthy``): it is left out
  of the table, and a later revision that routes traffic to it keeps the old
  table instead (it is re-loaded and re-checked, so a passing check clears
  it). Clients never see its errors. Each verdict goes to ``on_health``
  (``for_endpoint`` stores it as evidence on the endpoint's running rollout,
  which the controller reads before the switch).
- **Versions stay loaded while a policy names them** (reused across revisions,
  never reloaded): the old version kept as standby after a promotion answers a
  rollback at once.
- **Weighted routing draws once per micro-batch**, not once per request, when
  the server reports batch boundaries (:meth:`next_batch`, called as each batch
  is formed): every request routed between two boundaries lands in the same
  next batch, so holding one draw for them keeps each batch on one version and
  one model call. Per-request draws split nearly every batch under load into
  two smaller calls, paying the model's per-call cost twice (bench/serving/
  routing/RESULTS.md). The draw is independent of how many requests the epoch
  holds, so each version still gets its weight's share of requests; at low
  load (one request per batch) it is a per-request draw. Without batch reports
  (a router used on its own) every request draws. Either way ``route`` is O(1).
- **Sticky** routing (A/B) hashes the request key (``X-Request-Key``, else the
  configured ``key_field`` of the payload, else the request id) with blake2b to
  ``[0, 1)`` over the routes in policy order: the same key gets the same version
  while the weights stand. The batcher still forms each batch from one version
  (requests for the other keep their places at the head of the queue and make
  the next batch), so a split never splits a model call or the log's columnar
  batch.
- **Shadows never answer**: :meth:`route` only returns versions with weight > 0;
  the batcher asks :meth:`shadow_for_batch` after each batch is answered, scores
  the copies off the response path (its shadow worker process, else its shadow
  thread; bounded: copies it cannot keep up with are dropped and counted) and
  logs them under ``loopml.deploy.shadow_endpoint_name``.
  The policy's ``shadow_fraction`` samples whole batches, so a 10% shadow costs
  ~10% of the model calls, not a small call per batch.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.kernel.exceptions import DeploymentError, ValidationError
from loopml.serve._health import HealthCheck, check_health
from loopml.serve._router import ServedModel

__all__ = ["PolicyRouter", "RoutingTable", "sticky_bucket"]

log = logging.getLogger("loopml.serve")

_SCALE = float(1 << 64)


def sticky_bucket(key: str) -> float:
    """A stable number in ``[0, 1)`` for a request key (same key, same bucket, any process)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()) / _SCALE


@dataclass(frozen=True)
class RoutingTable:
    """One revision of the policy, with every model it names loaded. Never mutated."""

    revision: int
    policy: dict[str, Any]
    answering: tuple[ServedModel, ...]
    cumulative: tuple[float, ...]
    sticky: bool
    standby: tuple[ServedModel, ...] = ()
    shadows: tuple[ServedModel, ...] = ()
    loaded: dict[int, ServedModel] = field(default_factory=dict)
    #: share of answered batches the shadows also score
    shadow_fraction: float = 1.0

    @property
    def single(self) -> ServedModel | None:
        return self.answering[0] if len(self.answering) == 1 else None


def _load_version(ws: Any, model: str, version: int) -> Any:
    """One version from the workspace's registry (a module function, so a shadow worker can be handed it)."""
    from loopml.register import load_model

    return load_model(ws, f"{model}/{version}")


def _pick(t: RoutingTable, u: float) -> ServedModel:
    i = bisect_right(t.cumulative, u)
    return t.answering[i if i < len(t.answering) else -1]


def _fraction(value: Any) -> float:
    """A stored ``shadow_fraction``; one out of (0, 1] (an older or hand-edited policy) means every batch."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        return 1.0
    return share if 0.0 < share <= 1.0 else 1.0


class PolicyRouter:
    """A ``ModelRouter`` over a versioned traffic policy, re-read without a restart.

    Args:
        endpoint: the endpoint's name (for logs and errors).
        fetch_revision: returns the endpoint's current revision (cheap; run in a thread).
        fetch_policy: returns ``(revision, policy)`` read together.
        load: loads one version of the policy's model (a ``LoadedModel``-like object).
        key_field: payload field used as the sticky key when no ``X-Request-Key`` header is sent.
    """

    def __init__(
        self,
        endpoint: str,
        fetch_revision: Callable[[], int],
        fetch_policy: Callable[[], tuple[int, Mapping[str, Any]]],
        load: Callable[[str, int], Any],
        *,
        poll_interval_s: float = 1.0,
        key_field: str | None = None,
        on_swap: Callable[[RoutingTable, RoutingTable], None] | None = None,
        on_health: Callable[[int, HealthCheck], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._fetch_revision = fetch_revision
        self._fetch_policy = fetch_policy
        #: how versions are loaded; a shadow worker (``_shadow_worker.py``) loads its versions with it when it pickles
        self.loader = load
        self.poll_interval_s = poll_interval_s
        self.key_field = key_field
        self.on_swap = on_swap
        self.on_health = on_health
        #: version -> why it failed its health check in this process (never routed to while here)
        self.unhealthy: dict[int, str] = {}
        self.swaps = 0
        self.last_error: str | None = None
        self._random = random.random
        #: batches whose copy the shadow sampling kept / left out (``shadow_fraction``)
        self.shadow_batches = 0
        self.shadow_skipped_batches = 0
        # Batch-aligned draws: (table, version) held until the next batch boundary.
        self._aligned = False
        self._held: tuple[RoutingTable, ServedModel] | None = None
        revision, policy = fetch_policy()
        self.table = self._build(revision, dict(policy), {})

    @classmethod
    def for_endpoint(cls, ws: Any, endpoint: str, **options: Any) -> PolicyRouter:
        """A router over a workspace's endpoint (``loopml.deploy``), loading from its registry."""
        from sqlalchemy import select

        from loopml.deploy import get_endpoint
        from loopml.kernel.exceptions import NotFoundError
        from loopml.metadata._orm import Endpoint as EndpointRow

        query = select(EndpointRow.revision).where(EndpointRow.name == endpoint)

        def fetch_revision() -> int:
            with ws.store.read() as session:
                revision = session.execute(query).scalar_one_or_none()
            if revision is None:
                raise NotFoundError(f"endpoint {endpoint!r} does not exist any more")
            return int(revision)

        def fetch_policy() -> tuple[int, dict[str, Any]]:
            record = get_endpoint(ws, endpoint)
            return record.revision, record.policy

        def on_health(version: int, health: HealthCheck) -> None:
            from loopml.deploy import record_health_check

            try:
                record_health_check(ws, endpoint, version, health.to_dict())
            except Exception:
                log.exception("endpoint %s: could not store the health check of version %d", endpoint, version)

        options.setdefault("on_health", on_health)
        return cls(endpoint, fetch_revision, fetch_policy, functools.partial(_load_version, ws), **options)

    # ------------------------------------------------------------ request path

    def route(self, request_key: str) -> ServedModel:
        """The version that answers this request (never a shadow); O(1)."""
        t = self.table
        if len(t.answering) == 1:
            return t.answering[0]
        if t.sticky:
            return _pick(t, sticky_bucket(request_key))
        if self._aligned:
            held = self._held
            if held is not None and held[0] is t:
                return held[1]
            served = _pick(t, self._random())
            self._held = (t, served)
            return served
        return _pick(t, self._random())

    def next_batch(self) -> None:
        """A micro-batch was formed: requests routed from now on go to the next one, so draw anew.

        Called by the server on its event loop (the thread ``route`` runs on), once as it starts the
        endpoint's batcher and then as each batch is formed. The first call turns on batch-aligned
        draws for this router.
        """
        self._aligned = True
        self._held = None

    def shadow_for_batch(self) -> tuple[ServedModel, ...]:
        """The shadows that score a copy of the batch just answered: all of them for ``shadow_fraction``
        of the batches (a uniform draw per batch), none for the others."""
        t = self.table
        if not t.shadows:
            return ()
        if t.shadow_fraction < 1.0 and self._random() >= t.shadow_fraction:
            self.shadow_skipped_batches += 1
            return ()
        self.shadow_batches += 1
        return t.shadows

    def models(self) -> list[ServedModel]:
        """Versions that answer now (weight > 0), in policy order."""
        return list(self.table.answering)

    def shadow_models(self) -> tuple[ServedModel, ...]:
        """Versions that score copies of answered batches (``shadow_fraction`` of them)."""
        return self.table.shadows

    def standby_models(self) -> tuple[ServedModel, ...]:
        return self.table.standby

    def pick(self, version: str) -> ServedModel | None:
        """An answering or standby version asked for by number (``/versions/{v}/infer``); never a shadow."""
        t = self.table
        for m in (*t.answering, *t.standby):
            if m.version_str == version:
                return m
        return None

    def key_from_payload(self, payload: Any) -> str | None:
        """The sticky key from the request body's ``key_field`` (first row), if it carries one."""
        f = self.key_field
        if f is None or not isinstance(payload, dict):
            return None
        value: Any = None
        params = payload.get("parameters")
        if isinstance(params, dict) and f in params:
            value = params[f]
        elif isinstance(payload.get("dataframe_records"), list) and payload["dataframe_records"]:
            first = payload["dataframe_records"][0]
            value = first.get(f) if isinstance(first, dict) else None
        elif isinstance(payload.get("instances"), list) and payload["instances"]:
            first = payload["instances"][0]
            value = first.get(f) if isinstance(first, dict) else None
        elif isinstance(payload.get("dataframe_split"), dict):
            split = payload["dataframe_split"]
            cols, data = split.get("columns"), split.get("data")
            if isinstance(cols, list) and f in cols and isinstance(data, list) and data:
                row = data[0]
                value = row[cols.index(f)] if isinstance(row, list) and len(row) == len(cols) else None
        else:
            inputs = payload.get("inputs")
            if isinstance(inputs, list):  # OIP tensors
                for tensor in inputs:
                    if isinstance(tensor, dict) and tensor.get("name") == f:
                        data = tensor.get("data")
                        value = data[0] if isinstance(data, list) and data else None
                        break
            elif isinstance(inputs, dict):  # MLflow columnar inputs
                col = inputs.get(f)
                value = col[0] if isinstance(col, list) and col else col
        if value is None or isinstance(value, (dict, list)):
            return None
        return str(value)

    # ------------------------------------------------------------ policy changes

    def _build(self, revision: int, policy: dict[str, Any], loaded: Mapping[int, ServedModel]) -> RoutingTable:
        """Load (or reuse) every version the policy names, then compute the routing table."""
        model = policy.get("model")
        routes = [r for r in policy.get("routes", []) if float(r.get("weight", 0)) > 0]
        if not model or not routes:
            raise ValidationError(f"endpoint {self.endpoint!r} revision {revision}: the policy routes no traffic",
                                  field="routes", rule="min")
        answering = {int(r["version"]) for r in routes}
        named_standby = [int(v) for v in policy.get("standby", [])]
        names = [int(r["version"]) for r in policy.get("routes", [])]
        names += named_standby + [int(v) for v in policy.get("shadow", [])]
        table: dict[int, ServedModel] = {}
        for v in dict.fromkeys(names):
            if v in loaded:
                table[v] = loaded[v]
                continue
            served = ServedModel(self.loader(model, v))
            if v in named_standby or v in self.unhealthy:
                health = check_health(served)
                self._health(v, health)
                if not health.healthy:
                    if v in answering:
                        raise DeploymentError(f"endpoint {self.endpoint!r} revision {revision}: version {v} failed "
                                              f"its health check, not switching to it: {health.detail}")
                    continue  # an unhealthy standby is not kept warm: nothing may switch to it
            table[v] = served
        total = sum(float(r["weight"]) for r in routes)
        cumulative, acc = [], 0.0
        for r in routes:
            acc += float(r["weight"]) / total
            cumulative.append(acc)
        cumulative[-1] = 1.0
        return RoutingTable(
            revision=revision, policy=policy,
            answering=tuple(table[int(r["version"])] for r in routes),
            cumulative=tuple(cumulative), sticky=bool(policy.get("sticky")),
            standby=tuple(table[v] for v in named_standby if v in table),
            shadows=tuple(table[int(v)] for v in policy.get("shadow", []) if int(v) in table),
            loaded=table, shadow_fraction=_fraction(policy.get("shadow_fraction", 1.0)),
        )

    def _health(self, version: int, health: HealthCheck) -> None:
        if health.healthy:
            self.unhealthy.pop(version, None)
            log.info("endpoint %s: version %d health check %s: %s", self.endpoint, version, health.status,
                     health.detail)
        else:
            self.unhealthy[version] = health.detail
            log.warning("endpoint %s: version %d is unhealthy, not kept warm: %s", self.endpoint, version,
                        health.detail)
        if self.on_health is not None:
            self.on_health(version, health)

    def check(self) -> RoutingTable | None:
        """The new table when the revision moved (blocking: run it in a thread), else None."""
        if self._fetch_revision() == self.table.revision:
            return None
        revision, policy = self._fetch_policy()
        if revision == self.table.revision:
            return None
        return self._build(revision, dict(policy), self.table.loaded)

    def switch(self, table: RoutingTable) -> None:
        """Route by ``table`` from now on: one attribute assignment."""
        old, self.table = self.table, table
        self.swaps += 1
        self.last_error = None
        log.info("endpoint %s: policy revision %d -> %d, answering %s, standby %s, shadow %s", self.endpoint,
                 old.revision, table.revision, [m.version for m in table.answering],
                 [m.version for m in table.standby], [m.version for m in table.shadows])
        if self.on_swap is not None:
            self.on_swap(old, table)

    def refresh(self) -> bool:
        """Check and switch in the caller's thread (tests, scripts). True when it switched."""
        try:
            table = self.check()
        except Exception as exc:  # noqa: BLE001 - keep routing by the current table; say why
            self._failed(exc)
            return False
        if table is None:
            return False
        self.switch(table)
        return True

    async def poll_once(self) -> bool:
        """Check once from the event loop; the SELECT and any load run in a worker thread."""
        try:
            table = await asyncio.to_thread(self.check)
        except Exception as exc:  # noqa: BLE001 - same: a poll never stops serving
            self._failed(exc)
            return False
        if table is None or table.revision == self.table.revision:
            return False
        self.switch(table)
        return True

    async def poll_forever(self) -> None:
        """Run in the server's event loop until cancelled."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.poll_once()

    def _failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("endpoint %s: policy poll failed, still routing by revision %d: %s",
                    self.endpoint, self.table.revision, self.last_error)
