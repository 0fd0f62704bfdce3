"""Batch scoring on Ray Data: the contract of :func:`loopml.serve.batch.score_file`, in parallel.

``ray.data.read_parquet`` streams the input in blocks of at most
``batch_rows`` rows to a pool of actors; each actor holds the model once (it
fetches it from the object store when it starts) and runs the same contract
check (:func:`~loopml.serve.batch.reject_reasons`) and prediction code
(``batch._predict``) as the single-machine path. Blocks come back to the
driver in input order (``preserve_order``), where rows are split into the
output and the reject file (``_row`` numbers are global), written through the
same temp-file-then-rename writer, and recorded in the same transaction
(audit ``prediction_batch.score`` + lineage ``model_version --used_by-->
prediction_batch``), so a Ray batch is indistinguishable from a local one in
the store. Memory stays bounded: Ray Data's streaming executor keeps only a
few blocks in flight (backpressure), and the driver holds one block at a time.

Only the Parquet input is read on Ray (CSV input: use the single-machine path).
Input and output paths must be reachable from the driver; the input must also
be readable by every Ray worker (a shared path, or the same file on each node).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.kernel.exceptions import (
    DataError,
    MissingExtraError,
    NotFoundError,
    ServingError,
    ValidationError,
)
from loopml.kernel.types import new_id
from loopml.serve import batch as _batch

__all__ = ["score_file_ray"]

_TYPED = "__loopml_typed__."
_REASON = "_reject_reason"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", "batch scoring on Ray") from exc
    return ray


class _Scorer:
    """A Ray Data actor: the model is fetched once, then every block is checked and scored."""

    def __init__(self, model_box: list[Any]) -> None:
        import ray

        self.loaded = ray.get(model_box[0])  # boxed so Ray does not resolve it per call
        self.contract = self.loaded.signature or {}
        self.features = list((self.contract.get("columns") or {}).keys())

    def __call__(self, table: pa.Table) -> pa.Table:
        frame = table.to_pandas()
        typed, reasons = _batch.reject_reasons(frame, self.contract)
        bad = np.array([r is not None for r in reasons], dtype=bool)
        good = ~bad
        out = table
        for name in self.features:
            out = out.append_column(_TYPED + name, pa.Array.from_pandas(typed[name]))
        if good.any():
            X = typed[good] if self.features else frame[good]
            # the row number in the error is block-local here; the driver knows the offset
            scored = _batch._predict(self.loaded, X.reset_index(drop=True), 0)
            # full-length columns: the scored rows in place, null on rejected rows
            index = pa.array(np.cumsum(good) - 1, mask=bad)
            for name, values in scored.items():
                out = out.append_column(name, pa.array(values).take(index))
        return out.append_column(_REASON, pa.array([None if r is None else str(r) for r in reasons], pa.string()))


def _split(table: pa.Table, input_names: list[str], features: list[str], rows_in: int) -> tuple[pa.Table, pa.Table]:
    """One scored block → (output rows, reject rows), shaped exactly as ``score_file`` writes them."""
    reason = table.column(_REASON)
    ok = pc.is_null(reason)
    good = table.filter(ok)
    bad_mask = pc.invert(ok)
    extra = [n for n in table.column_names if n not in input_names and not n.startswith(_TYPED) and n != _REASON]
    out_cols = {n: good.column(_TYPED + n if n in features else n) for n in input_names}
    out_cols.update({n: good.column(n) for n in extra})
    rejected = table.filter(bad_mask)
    rows = pc.indices_nonzero(bad_mask) if hasattr(pc, "indices_nonzero") else pa.array(
        np.flatnonzero(bad_mask.to_numpy(zero_copy_only=False)))
    rej_cols = {n: rejected.column(n) for n in input_names}
    rej_cols["_row"] = pc.add(rows.cast(pa.int64()), rows_in)
    rej_cols[_REASON] = rejected.column(_REASON)
    return pa.table(out_cols), pa.table(rej_cols)


def _drain(blocks: Iterator[pa.Table], out: Any, rejects: Any, input_names: list[str], features: list[str],
           progress: _batch.Progress | None, total: int) -> int:
    """Write scored blocks, in input order, to the output and reject files; the rows seen."""
    rows_in = 0
    for block in blocks:
        good, bad = _split(block, input_names, features, rows_in)
        if good.num_rows:
            out.write(good)
        if bad.num_rows:
            rejects.write(bad)
        rows_in += block.num_rows
        if progress is not None:
            progress(rows_in, total)
    return rows_in


def score_file_ray(
    ws: Any,
    model_ref: Any,
    input_path: str | Path,
    output_path: str | Path,
    *,
    reject_path: str | Path | None = None,
    batch_rows: int = 65536,
    num_workers: int | None = None,
    address: str | None = None,
    progress: _batch.Progress | None = None,
) -> _batch.BatchResult:
    """:func:`loopml.serve.batch.score_file` on Ray Data, ``num_workers`` actors each holding the model.

    Args:
        num_workers: scoring actors (default: the cluster's CPUs).
        address: Ray to join when this process has not started one (``None``:
            a local Ray; ``"auto"``; ``"ray://HOST:PORT"``).

    Raises: as ``score_file``; ``ValidationError`` for a CSV input;
        ``MissingExtraError`` without ray.
    """
    t0 = time.perf_counter()
    src, dst = Path(input_path), Path(output_path)
    if not src.is_file():
        raise NotFoundError(f"input file {str(src)!r} does not exist")
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ValidationError(f"batch_rows must be an integer >= 1, got {batch_rows!r}", field="batch_rows", rule="positive")
    if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
        raise ValidationError(f"num_workers must be an integer >= 1, got {num_workers!r}", field="num_workers", rule="positive")
    if _batch._format(src, "input") != "parquet":
        raise ValidationError(
            f"input {str(src)!r}: the Ray path reads Parquet only; convert it, or score it without --executor ray",
            field="input", rule="format",
        )
    out_fmt = _batch._format(dst, "output")
    rej = Path(reject_path) if reject_path else dst.with_name(f"{dst.stem}.rejects{dst.suffix}")
    rej_fmt = _batch._format(rej, "reject")
    if len({src.resolve(), dst.resolve(), rej.resolve()}) < 3:
        raise ValidationError("input, output and reject paths must be three different files", field="output", rule="distinct")

    loaded = _batch._load(ws, model_ref)
    contract = loaded.signature or {}
    features = list((contract.get("columns") or {}).keys())
    try:
        meta = pq.ParquetFile(src)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"input {str(src)!r} is not a readable Parquet file: {exc}") from exc
    input_names = list(meta.schema_arrow.names)
    total = meta.metadata.num_rows
    missing = [c for c in features if c not in input_names]
    if missing:
        raise ValidationError(
            f"input {str(src)!r} lacks column {missing[0]!r} that model {loaded.name}/{loaded.version} "
            f"needs; input columns: {', '.join(input_names)}",
            field=missing[0], rule="required",
        )

    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                 **({} if address and address.startswith("ray://") else {"include_dashboard": False}))
    cpus = float(ray.cluster_resources().get("CPU", 1))
    workers = num_workers or max(1, int(cpus))
    # Leave one CPU unclaimed for Ray Data's own listing and read tasks: actors
    # holding every CPU slot would starve them (a deadlock, not just a slowdown).
    actor_cpus = max(0.05, min(1.0, (cpus - 1) / workers)) if cpus > 1 else 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray's context copies its deprecated knobs
        ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # global _row numbers, and the output in input order
    ctx.enable_progress_bars = False
    model_ref_obj = ray.put(loaded)
    ds = ray.data.read_parquet(str(src.resolve())).map_batches(
        _Scorer, fn_constructor_kwargs={"model_box": [model_ref_obj]}, batch_size=batch_rows,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=actor_cpus,
        zero_copy_batch=True,
    )

    out = _batch._Out(dst, out_fmt)
    rejects = _batch._Out(rej, rej_fmt)
    rows_in = 0
    try:
        with warnings.catch_warnings():
            # One Parquet file is one read task whose blocks stream to every actor;
            # Ray's plan-time warning that "the operator only received 1 input" is moot.
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="ray")
            blocks = ds.iter_batches(batch_size=None, batch_format="pyarrow")
            rows_in = _drain(blocks, out, rejects, input_names, features, progress, total)
        if out.writer is None:  # nothing scorable: still leave an (empty) output behind
            cols = {name: pa.array([], type=pa.string()) for name in (features or [])}
            cols["prediction"] = pa.array([], type=pa.string())
            out.write(pa.table(cols))
        out.commit()
        has_rejects = rejects.commit()
    except BaseException as exc:
        out.abort()
        rejects.abort()
        if isinstance(exc, ray.exceptions.RayError):
            # a model error on a worker arrives wrapped; hand back ours, as the local path raises it
            inner = getattr(exc, "cause", None)
            if isinstance(inner, (ServingError, ValidationError, DataError)):
                raise inner from None
            raise ServingError(f"batch scoring on Ray failed: {type(exc).__name__}: {exc}") from exc
        raise

    result = _batch.BatchResult(
        batch_id=new_id(),
        model_name=loaded.name,
        model_version=int(loaded.version),
        input_path=str(src.resolve()),
        output_path=str(dst.resolve()),
        reject_path=str(rej.resolve()) if has_rejects else None,
        rows_in=rows_in,
        rows_scored=out.rows,
        rows_rejected=rejects.rows,
        input_digest=_batch.sha256_file(src),
        output_digest=_batch.sha256_file(dst),
        reject_digest=_batch.sha256_file(rej) if has_rejects else None,
        seconds=round(time.perf_counter() - t0, 3),
    )
    _batch._record(ws, loaded, result)
    return result
