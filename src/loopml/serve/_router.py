"""Which model version answers a request: :class:`ModelRouter` and its two kinds today.

A router returns a ``LoadedModel`` (``name, version, estimator, signature,
task, record``; see ``loopml.register``). Traffic policies (canary, A/B,
shadow; issue 5) will be further routers keyed on the request key. The
server never holds on to a model past the requests that routed to it, so a
swap is just an attribute assignment: requests in flight finish on the old
version, new ones get the new one, none fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from loopml.kernel.exceptions import RegistryError
from loopml.serve._validation import Contract, Frame

__all__ = ["AliasRouter", "ModelRouter", "ServedModel", "SingleModelRouter"]

log = logging.getLogger("loopml.serve")

# Classifiers whose predict() is not argmax(predict_proba): call predict() too.
_THRESHOLDED = frozenset({"TunedThresholdClassifierCV", "FixedThresholdClassifier"})


@runtime_checkable
class ModelRouter(Protocol):
    """Picks the model version for a request; ``route`` must be cheap and non-blocking."""

    def route(self, request_key: str) -> Any: ...

    def models(self) -> list[Any]:
        """Every model this router may answer with now (for metadata and readiness)."""
        ...


class ServedModel:
    """A loaded model made ready to serve: its compiled contract and output shape."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name: str = model.name
        self.version: int = int(model.version)
        self.version_str = str(self.version)
        est = model.estimator
        self.estimator = est
        self.contract = Contract.for_model(getattr(model, "signature", None), est)
        task = getattr(model, "task", None)
        self.classifier = hasattr(est, "predict_proba") and task != "regression"
        classes = getattr(est, "classes_", None) if self.classifier else None
        if self.classifier and classes is None:
            raise RegistryError(f"model {self.name}/{self.version}: a classifier without classes_ (is it fitted?)")
        self.classes = np.asarray(classes) if classes is not None else None
        self.classes_list = self.classes.tolist() if self.classes is not None else None
        self.labels_numeric = self.classes is None or self.classes.dtype.kind in "iufb"
        self.separate_predict = type(est).__name__ in _THRESHOLDED
        kind = self.classes.dtype.kind if self.classes is not None else "f"
        self.label_datatype = {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL"}.get(kind, "BYTES")
        record = getattr(model, "record", None)
        self.digest: str | None = getattr(record, "artifact_digest", None)

    def predict(self, frame: Frame, codes: dict[str, np.ndarray]) -> tuple[Any, np.ndarray | None]:
        """Labels (or values) and, for classifiers, class probabilities, for a whole batch."""
        x = self.contract.model_input(frame, codes)
        est = self.estimator
        if self.classifier:
            proba = np.ascontiguousarray(est.predict_proba(x), dtype=np.float64)
            labels = est.predict(x) if self.separate_predict else self.classes[proba.argmax(axis=1)]  # type: ignore[index]
            return (labels if self.labels_numeric else labels.tolist()), proba
        values = np.ascontiguousarray(np.asarray(est.predict(x)))
        if values.dtype.kind not in "iufb":
            return values.tolist(), None
        return values, None

    def metadata_inputs(self) -> list[dict[str, Any]]:
        c = self.contract
        if c.all_numeric:
            return [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(c.names)],
                     "parameters": {"columns": c.names}}]
        return [{"name": s.name, "datatype": "FP64" if s.numeric else "BYTES", "shape": [-1]} for s in c.specs]

    def metadata_outputs(self) -> list[dict[str, Any]]:
        outs = [{"name": "predict", "datatype": self.label_datatype if self.classifier else "FP64", "shape": [-1]}]
        if self.classifier:
            outs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(self.classes_list or [])],
                         "parameters": {"classes": self.classes_list}})
        return outs


class SingleModelRouter:
    """One fixed model version."""

    def __init__(self, model: Any) -> None:
        self.current = model if isinstance(model, ServedModel) else ServedModel(model)

    def route(self, request_key: str) -> ServedModel:
        return self.current

    def models(self) -> list[ServedModel]:
        return [self.current]


class AliasRouter:
    """A model reference that may move (``churn@champion``): polls, loads, then switches.

    ``resolve()`` is cheap and returns a token naming the version now behind the
    reference (e.g. ``(version, artifact_digest)``); ``load(token)`` loads it.
    Both run in a worker thread; the new model is compiled before the switch.
    """

    def __init__(
        self,
        resolve: Callable[[], Hashable],
        load: Callable[[Hashable], Any],
        *,
        poll_interval_s: float = 1.0,
        on_swap: Callable[[ServedModel, ServedModel], None] | None = None,
    ) -> None:
        self._resolve = resolve
        self._load = load
        self.poll_interval_s = poll_interval_s
        self.on_swap = on_swap
        self.token = resolve()
        self.current = ServedModel(load(self.token))
        self.swaps = 0
        self.last_error: str | None = None

    def route(self, request_key: str) -> ServedModel:
        return self.current

    def models(self) -> list[ServedModel]:
        return [self.current]

    async def poll_forever(self) -> None:
        """Run in the server's event loop until cancelled."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.poll_once()

    async def poll_once(self) -> bool:
        """Check the reference once; swap if it moved. True when it swapped."""
        try:
            token = await asyncio.to_thread(self._resolve)
            if token == self.token:
                return False
            new = await asyncio.to_thread(lambda: ServedModel(self._load(token)))
        except Exception as exc:  # keep serving the current version; say why on /metrics and the log
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("model reference poll failed, still serving %s/%s: %s",
                        self.current.name, self.current.version, self.last_error)
            return False
        old, self.current, self.token = self.current, new, token
        self.swaps += 1
        self.last_error = None
        log.info("swapped %s/%s -> %s/%s", old.name, old.version, new.name, new.version)
        if self.on_swap is not None:
            self.on_swap(old, new)
        return True
