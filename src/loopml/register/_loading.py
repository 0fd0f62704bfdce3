"""Loading a model version: verify the bytes, then (and only then) unpickle them.

Unpickling runs code, so the artifact's sha256 is checked against the
registry record before a single byte reaches the unpickler: the CAS verifies
the payload against the digest it is addressed by, and we check that digest
against the record again. Loaded estimators are cached per digest (a digest
names exact bytes, so a cached object can never be stale).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from loopml.kernel.exceptions import IntegrityError, NotFoundError, RegistryError
from loopml.kernel.types import ModelRef
from loopml.register._records import LoadedModel, ModelVersionRecord
from loopml.register._registry import resolve
from loopml.register._serialize import load_bytes
from loopml.workspace import Workspace

__all__ = ["CACHE_SIZE", "clear_model_cache", "load_model"]

#: How many loaded estimators stay in memory (most recently used kept).
CACHE_SIZE = 8

_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()


def clear_model_cache() -> None:
    """Forget every cached estimator (tests; freeing memory)."""
    with _cache_lock:
        _cache.clear()


def _cached(digest: str) -> tuple[bool, Any]:
    with _cache_lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return True, _cache[digest]
    return False, None


def _remember(digest: str, estimator: Any) -> None:
    with _cache_lock:
        _cache[digest] = estimator
        _cache.move_to_end(digest)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def _read_verified(ws: Workspace, record: ModelVersionRecord) -> tuple[bytes, str]:
    """The model's bytes, hashed and compared with the registry's digest before anything unpickles them."""
    digest = record.artifact_digest
    try:
        data, info = ws.artifacts.read(digest)  # refuses bytes whose sha256 is not ``digest``
    except NotFoundError as exc:
        raise RegistryError(
            f"model {record.ref}: its artifact {digest[:12]} is missing from the artifact store"
        ) from exc
    except IntegrityError as exc:
        raise IntegrityError(f"model {record.ref}: {exc}; refusing to load it") from exc
    actual = hashlib.sha256(data).hexdigest()  # defence in depth: whatever the store backend did
    if actual != digest:
        raise IntegrityError(
            f"model {record.ref}: artifact bytes hash to {actual[:12]}, the registry records {digest[:12]}; "
            "refusing to load it"
        )
    return data, str(info.meta.get("serializer", "joblib"))


def load_model(ws: Workspace, ref: str | ModelRef | ModelVersionRecord) -> LoadedModel:
    """The estimator of ``ref`` (``NAME@ALIAS``, ``NAME/VERSION``, ``NAME``), verified.

    Raises:
        NotFoundError: no such model, alias or version.
        IntegrityError: the stored bytes do not match the registry's digest
            (nothing was unpickled).
        RegistryError: the artifact is missing or cannot be unpickled here.
    """
    record = ref if isinstance(ref, ModelVersionRecord) else resolve(ws, ref)
    hit, estimator = _cached(record.artifact_digest)
    if not hit:
        data, serializer = _read_verified(ws, record)
        estimator = load_bytes(data, serializer, what=f"model {record.ref}")
        _remember(record.artifact_digest, estimator)
    return LoadedModel(
        name=record.name, version=record.version, estimator=estimator,
        signature=record.signature, task=record.task, record=record,
    )
