"""Model bytes: pickle (protocol 5) for scikit-learn estimators, cloudpickle for anything else.

The serializer is recorded in the artifact's envelope meta, so loading never
guesses. Versions registered earlier were written with joblib and still
load (``serializer: joblib``); new ones use the C pickler, which writes and
reads a small estimator 10-15x faster than joblib's pure-Python pickler (joblib
only pays off when it writes arrays to a file it can memory-map, and model
bytes go to an in-memory buffer). Loading unpickles, which runs code:
callers verify the bytes' digest first (:func:`loopml.register.load_model` does).
"""

from __future__ import annotations

import io
import pickle
import platform
import warnings
from typing import Any

from loopml.kernel.exceptions import RegistryError

__all__ = ["MEDIA_TYPE", "dump_model", "infer_task", "load_bytes", "model_meta"]

MEDIA_TYPE = "application/x-loopml-model"
SERIALIZERS = ("pickle", "joblib", "cloudpickle")


def dump_model(model: Any, flavor: str) -> tuple[bytes, str]:
    """``(payload, serializer)`` for ``model``; sklearn-flavoured models use plain pickle.

    Protocol 5 copies numpy buffers as they are, but pickles functions by reference;
    a pipeline holding a lambda falls back to cloudpickle, which pickles by value.
    """
    if flavor == "sklearn":
        try:
            return pickle.dumps(model, protocol=5), "pickle"
        except (pickle.PicklingError, AttributeError, TypeError):
            pass
    import cloudpickle

    try:
        return cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "cloudpickle"
    except Exception as exc:  # anything a __reduce__ may raise
        raise RegistryError(
            f"model of type {type(model).__module__}.{type(model).__qualname__} cannot be serialized: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_bytes(data: bytes, serializer: str, *, what: str) -> Any:
    """Unpickle verified bytes; foreign errors become :class:`RegistryError` naming ``what``."""
    if serializer not in SERIALIZERS:
        raise RegistryError(f"{what}: unknown serializer {serializer!r}; known: {', '.join(SERIALIZERS)}")
    try:
        if serializer == "pickle":
            return pickle.loads(data)  # the digest was verified against the registry
        if serializer == "joblib":
            import joblib

            return joblib.load(io.BytesIO(data))
        import cloudpickle  # noqa: F401 - by-value functions need it importable

        return pickle.loads(data)  # noqa: S301 - the digest was verified against the registry
    except Exception as exc:
        raise RegistryError(f"{what} could not be loaded: {type(exc).__name__}: {exc}") from exc


def model_meta(model: Any, serializer: str, flavor: str) -> dict[str, Any]:
    """Envelope meta: how to load the bytes, and what produced them."""
    meta: dict[str, Any] = {
        "serializer": serializer,
        "flavor": flavor,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "python": platform.python_version(),
    }
    if flavor == "sklearn":
        try:
            import sklearn

            meta["sklearn"] = sklearn.__version__
        except ImportError:  # pragma: no cover - core dependency
            pass
    return meta


def infer_task(model: Any) -> str | None:
    """``classification`` / ``regression`` for estimators that say so, else ``None``."""
    estimator_type = None
    with warnings.catch_warnings():
        # sklearn deprecates ``_estimator_type`` in favour of tags; read either quietly.
        warnings.simplefilter("ignore")
        if hasattr(model, "__sklearn_tags__"):
            try:
                from sklearn.utils import get_tags

                estimator_type = get_tags(model).estimator_type
            except Exception:  # a half-implemented estimator: no task, not an error
                estimator_type = None
        if estimator_type is None:
            estimator_type = getattr(model, "_estimator_type", None)
    return {"classifier": "classification", "regressor": "regression", "clusterer": "clustering"}.get(
        str(estimator_type)
    )
