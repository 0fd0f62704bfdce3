"""Step outputs to bytes and back: pandas DataFrames as Parquet, anything else cloudpickled.

The serializer is recorded in the artifact's meta (``{"serializer": ...}``) so a
reader on any machine knows how to load it. pandas and pyarrow are imported
only when a DataFrame is (de)serialized, which keeps ``import loopml.runner``
light. A DataFrame that Parquet cannot hold (non-string column names, mixed
object columns) falls back to cloudpickle, and the meta says why.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any

from loopml.kernel.exceptions import ArtifactError

__all__ = ["MEDIA_TYPES", "dumps", "loads"]

MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "cloudpickle": "application/vnd.loopml.cloudpickle",
    "pickle": "application/python-pickle",
}


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


def _is_dataframe(value: Any) -> bool:
    # Never import pandas to answer "no": if pandas is not loaded, it is not a DataFrame.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _pickle(value: Any) -> tuple[bytes, str]:
    try:
        import cloudpickle
    except ImportError:  # cloudpickle is a core dependency; plain pickle is the fallback
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), "cloudpickle"


def dumps(value: Any) -> tuple[bytes, str, dict[str, Any]]:
    """``(payload, media_type, meta)`` for one step output."""
    meta: dict[str, Any] = {"python_type": _type_name(value)}
    if _is_dataframe(value):
        buf = io.BytesIO()
        try:
            value.to_parquet(buf, engine="pyarrow")
        except Exception as exc:  # pyarrow refuses some frames; pickling never loses them
            meta["parquet_error"] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            meta["serializer"] = "parquet"
            return buf.getvalue(), MEDIA_TYPES["parquet"], meta
    data, serializer = _pickle(value)
    meta["serializer"] = serializer
    return data, MEDIA_TYPES[serializer], meta


def loads(data: bytes, meta: dict[str, Any]) -> Any:
    """The value ``dumps`` stored, read back with the serializer its meta names.

    Raises:
        ArtifactError: the serializer is unknown or the bytes cannot be read with it.
    """
    serializer = meta.get("serializer")
    try:
        if serializer == "parquet":
            import pandas as pd

            return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
        if serializer in ("cloudpickle", "pickle"):
            # cloudpickle output is plain pickle data; cloudpickle must only be importable.
            return pickle.loads(data)  # noqa: S301 - artifacts are written by this workspace
    except Exception as exc:
        raise ArtifactError(
            f"could not load a step output ({meta.get('python_type', '?')}) with serializer "
            f"{serializer!r}: {type(exc).__name__}: {exc}"
        ) from exc
    raise ArtifactError(
        f"unknown serializer {serializer!r} in artifact meta; expected 'parquet', 'cloudpickle' or 'pickle'"
    )
