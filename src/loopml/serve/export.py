"""Edge export: a registered scikit-learn model as an ONNX file, checked for parity and recorded.

    result = export_model(ws, "churn@champion", format="onnx")
    result.parity.passed, result.parity.max_abs_diff_proba, result.digest

Invariants:

* Nothing is written unless the ONNX model reproduces the original on the
  parity rows within ``tolerance`` (max absolute difference of probabilities,
  or of predictions for a regressor) *and* agrees on every label; with
  ``require_parity=False`` a failing export is written and recorded with
  ``passed: false``. The report says which rows were used: the caller's
  ``sample``, else the model's own dataset version (the data it was trained
  and evaluated on, from the lineage graph), else rows synthesized from the
  signature's ranges and categories.
* The ONNX file is written atomically, stored in the artifact store (sha256),
  and recorded in one transaction: audit ``model.export`` on the model
  version with the digest and parity figures, and the lineage edge
  ``model_version --exported_as--> artifact:<digest>``.
* A model loopml cannot convert fails with a ``RegistryError`` naming the
  class and the supported list; a missing ``skl2onnx``/``onnxruntime`` with
  ``MissingExtraError`` naming ``loopml[onnx]``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import (
    GateFailed,
    LoopmlError,
    RegistryError,
    ValidationError,
)
from loopml.serve._export_onnx import (
    SUPPORTED,
    _require,
    convert,
    input_layout,
    onnx_feeds,
    run_onnx,
    unsupported_parts,
)

__all__ = ["FORMATS", "SUPPORTED", "ExportResult", "ParityReport", "export_model", "read_sample"]

FORMATS = ("onnx",)
MEDIA_TYPE = "application/onnx"


@dataclass(frozen=True)
class ParityReport:
    """How closely the exported model matches the original, and on which rows."""

    n_rows: int
    source: str
    tolerance: float
    max_abs_diff_proba: float | None
    max_abs_diff: float | None
    label_agreement: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    """One export: where the file is, its sha256, its inputs, and the parity figures."""

    model_name: str
    model_version: int
    format: str
    path: str
    digest: str
    size: int
    parity: ParityReport
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["parity"] = self.parity.to_dict()
        return out


def export_model(
    ws: Any,
    model_ref: Any,
    *,
    format: str = "onnx",
    output: str | os.PathLike[str] | None = None,
    sample: pd.DataFrame | None = None,
    tolerance: float = 1e-4,
    max_rows: int = 2000,
    require_parity: bool = True,
) -> ExportResult:
    """Convert ``model_ref`` to ``format``, check parity, write ``output``, record it.

    Args:
        output: the file; default ``.loopml/exports/<name>-<version>.onnx``.
        sample: rows to check parity on (the model's features at least).
        tolerance: the largest absolute difference allowed (probabilities for
            classifiers, predictions for regressors).
        max_rows: most parity rows taken from a dataset version.
        require_parity: raise ``GateFailed`` (and write nothing) when parity fails.

    Raises:
        ValidationError: unknown format, bad tolerance, or inputs ONNX cannot take.
        RegistryError: the model (or a part of its pipeline) cannot be converted.
        MissingExtraError: ``skl2onnx`` or ``onnxruntime`` is not installed.
        GateFailed: parity failed and ``require_parity`` is true.
    """
    if format not in FORMATS:
        raise ValidationError(f"export format {format!r} is not supported; choose one of: {', '.join(FORMATS)}",
                              field="format", rule="choice")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValidationError(f"tolerance must be a number > 0, got {tolerance!r}", field="tolerance", rule="positive")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValidationError(f"max_rows must be an integer >= 1, got {max_rows!r}", field="max_rows", rule="min")
    _require()
    loaded = _load(ws, model_ref)
    est = loaded.estimator
    ref = f"{loaded.name}/{loaded.version}"
    bad = unsupported_parts(est)
    if bad:
        raise RegistryError(
            f"model {ref} ({type(est).__name__}) cannot be exported to ONNX: {', '.join(bad)} "
            f"is not supported; supported: {', '.join(SUPPORTED)}"
        )
    classifier = hasattr(est, "predict_proba") and (loaded.task or "classification") != "regression"
    layout = input_layout(est, loaded.signature)
    proto = convert(est, layout, classifier=classifier)
    _stamp(proto, loaded)
    data = proto.SerializeToString()

    frame, source = _parity_rows(ws, loaded, layout, sample, max_rows)
    parity = _parity(est, data, frame, layout, source, float(tolerance), classifier)
    if require_parity and not parity.passed:
        raise GateFailed(
            f"ONNX export of {ref} failed the parity check on {parity.n_rows} rows ({source}): "
            f"max |diff| {_fmt(parity.max_abs_diff_proba if classifier else parity.max_abs_diff)} "
            f"(tolerance {tolerance:g}), label agreement {_fmt(parity.label_agreement)}; nothing was written",
            failures=[parity.to_dict()],
        )

    path = Path(output) if output else ws.dir / "exports" / f"{loaded.name}-{loaded.version}.onnx"
    _write_atomic(path, data)
    inputs = [{"name": n, "type": "string" if k == "string" else "float32", "shape": [None, len(c)], "features": c}
              for n, k, c in layout]
    info = ws.artifacts.put_bytes(data, media_type=MEDIA_TYPE, meta={
        "format": format, "model": loaded.name, "version": int(loaded.version), "parity": parity.to_dict(),
    })
    result = ExportResult(
        model_name=loaded.name, model_version=int(loaded.version), format=format, path=str(path.resolve()),
        digest=info.digest, size=len(data), parity=parity, inputs=inputs,
    )
    _record(ws, loaded, result)
    return result


def read_sample(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Rows to check parity on, from a Parquet or CSV file (``fmt``, else the file's suffix).

    Raises:
        ValidationError: not a .parquet/.pq/.csv file (``field='sample'``).
    """
    path = Path(path)
    kind = fmt or {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}.get(path.suffix.lower())
    if kind not in ("csv", "parquet"):
        raise ValidationError(f"sample {str(path)!r}: unsupported format {path.suffix.lower()!r}; use .parquet or .csv",
                              field="sample", rule="format")
    try:
        return pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors are ValueError/ArrowInvalid subclasses
        raise ValidationError(f"sample is not readable {kind}: {str(exc).splitlines()[0]}",
                              field="sample", rule="format") from None


# ----------------------------------------------------------------- helpers


def _load(ws: Any, model_ref: Any) -> Any:
    if not isinstance(model_ref, str):
        return model_ref
    import loopml.register as registry  # at call time: keeps ``import loopml.serve`` light

    return registry.load_model(ws, model_ref)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _stamp(proto: Any, loaded: Any) -> None:
    """Metadata an edge device can read without loopml: which version this is."""
    import json

    record = getattr(loaded, "record", None)
    props = {
        "loopml.model": loaded.name,
        "loopml.version": str(loaded.version),
        "loopml.artifact_digest": str(getattr(record, "artifact_digest", "")),
        "loopml.signature": json.dumps(loaded.signature or {}, sort_keys=True, default=str),
    }
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _parity_rows(
    ws: Any, loaded: Any, layout: list[tuple[str, str, list[str]]], sample: pd.DataFrame | None, max_rows: int
) -> tuple[pd.DataFrame, str]:
    names = [c for _, _, cols in layout for c in cols]
    if sample is not None:
        if not isinstance(sample, pd.DataFrame):
            raise ValidationError(f"sample must be a pandas DataFrame, got {type(sample).__name__}",
                                  field="sample", rule="type")
        missing = [n for n in names if n not in sample.columns]
        if missing:
            raise ValidationError(f"sample lacks feature {missing[0]!r}; the model needs {names}",
                                  field=missing[0], rule="missing")
        return _clean(sample[names].head(max_rows), layout), "sample"
    record = getattr(loaded, "record", None)
    for ds_ref in getattr(record, "dataset_versions", ()) or ():
        try:
            from loopml.ingest import load_frame

            frame = load_frame(ws, ds_ref, columns=names)
        except (LoopmlError, KeyError, ValueError):
            continue  # the data moved on or lacks a feature: try the next source
        if len(frame) > max_rows:
            frame = frame.sample(n=max_rows, random_state=0)
        frame = _clean(frame, layout)
        if len(frame):
            return frame, f"dataset_version:{ds_ref}"
    return _synthesize(loaded.signature or {}, layout), "synthesized"


def _clean(frame: pd.DataFrame, layout: list[tuple[str, str, list[str]]]) -> pd.DataFrame:
    """Text columns as ``str`` (what the ONNX string inputs get); rows with a null text value dropped."""
    frame = frame.copy()
    for _, kind, cols in layout:
        if kind == "string":
            frame = frame[frame[cols].notna().all(axis=1)]
            for c in cols:
                frame[c] = frame[c].astype(str).astype(object)
    return frame.reset_index(drop=True)


def _synthesize(signature: Mapping[str, Any], layout: list[tuple[str, str, list[str]]], n: int = 256) -> pd.DataFrame:
    """Rows within the signature's ranges and categories (seeded, so a re-export checks the same rows)."""
    rng = np.random.default_rng(0)
    columns: Mapping[str, Any] = signature.get("columns") or {}
    data: dict[str, Any] = {}
    for _, kind, cols in layout:
        for c in cols:
            spec = columns.get(c, {})
            ctype = spec.get("type", "float")
            if kind == "string":
                cats = [str(v) for v in (spec.get("categories") or ["a", "b"])]
                data[c] = np.array([cats[i % len(cats)] for i in rng.permutation(n)], dtype=object)
            elif ctype == "bool":
                data[c] = rng.integers(0, 2, n).astype(np.float64)
            else:
                lo = float(spec["min"]) if spec.get("min") is not None else 0.0
                hi = float(spec["max"]) if spec.get("max") is not None else lo + 1.0
                values = rng.uniform(lo, hi, n)
                data[c] = np.round(values) if ctype == "int" else values
    return pd.DataFrame(data)


def _parity(
    est: Any, data: bytes, frame: pd.DataFrame, layout: list[tuple[str, str, list[str]]], source: str,
    tolerance: float, classifier: bool,
) -> ParityReport:
    names = [str(n) for n in getattr(est, "feature_names_in_", [])] or [c for _, _, cols in layout for c in cols]
    x = frame[names] if hasattr(est, "feature_names_in_") else frame[names].to_numpy(dtype=np.float64)
    outputs = run_onnx(data, onnx_feeds(frame, layout))
    n = len(frame)
    if classifier:
        proba = np.asarray(est.predict_proba(x), dtype=np.float64)
        labels = np.asarray(est.predict(x))
        onnx_labels = outputs[0].reshape(-1)
        onnx_proba = outputs[1].astype(np.float64).reshape(proba.shape)
        diff = float(np.max(np.abs(onnx_proba - proba))) if n else 0.0
        agree = float(np.mean(onnx_labels.astype(str) == labels.astype(str))) if n else 1.0
        return ParityReport(n, source, tolerance, diff, None, agree, bool(n and diff <= tolerance and agree == 1.0))
    pred = np.asarray(est.predict(x), dtype=np.float64).reshape(-1)
    onnx_pred = outputs[0].astype(np.float64).reshape(-1)
    diff = float(np.max(np.abs(onnx_pred - pred))) if n else 0.0
    return ParityReport(n, source, tolerance, None, diff, None, bool(n and diff <= tolerance))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _record(ws: Any, loaded: Any, result: ExportResult) -> None:
    """One transaction: audit ``model.export`` and the lineage edge to the stored file."""
    record = getattr(loaded, "record", None)
    node = getattr(record, "node", None) or ("model_version", f"{loaded.name}/{loaded.version}")
    with ws.store.write(ws.actor) as tx:
        tx.audit("model.export", "model_version", node[1], after={
            "format": result.format, "digest": result.digest, "path": result.path, "size": result.size,
            "parity": result.parity.to_dict(), "inputs": result.inputs,
            "artifact_digest": getattr(record, "artifact_digest", None),
        })
        tx.link(node, "exported_as", ("artifact", result.digest))
