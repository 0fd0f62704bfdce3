"""``/prediction-batches``: score an uploaded file with a registered model (``loopml score`` against a
server); the output and the rejected rows are kept in the artifact store for download."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._schemas import BatchOut
from loopml.server._uploads import UPLOAD_BODY, spooled_upload

router = APIRouter(prefix="/prediction-batches", tags=["prediction batches"], responses=ERROR_RESPONSES)


@router.post("", response_model=BatchOut, status_code=201, openapi_extra={"requestBody": UPLOAD_BODY},
             summary="Score the body (CSV or Parquet) with a registered model; rows that break its contract "
                     "are rejected, not scored")
async def score(
    request: Request,
    model: str = Query(min_length=1, max_length=300, description="NAME@ALIAS or NAME/VERSION"),
    format: Literal["csv", "parquet"] | None = Query(None, description="The body's format (default: Content-Type)"),
    output_format: Literal["parquet", "csv"] = Query("parquet"),
    batch_rows: int = Query(65536, ge=1, le=10_000_000, description="Rows per record batch (bounds memory)"),
    filename: str | None = Query(None, max_length=1024, description="The uploaded file's name, for the record"),
    ctx: Ctx = Depends(allow("run.write")),
) -> dict[str, Any]:
    from loopml.serve.batch import score_file

    async with spooled_upload(request, format) as (path, _fmt):
        with tempfile.TemporaryDirectory(prefix="loopml-batch-") as tmp:
            out = FilePath(tmp) / f"output.{output_format}"
            result = await run_in_threadpool(
                lambda: score_file(ctx.ws, model, path, out, reject_path=out.with_name(f"rejects.{output_format}"),
                                   batch_rows=batch_rows, input_name=f"upload:{filename or path.name}",
                                   keep_outputs=True))
    return result.to_dict()


@router.get("/{batch_id}/files/{digest}", summary="A file a batch kept: its output or its rejected rows",
            responses={200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}}})
def batch_file(batch_id: str = Path(min_length=1, max_length=64, pattern="^[0-9a-f]+$"),
               digest: str = Path(pattern="^[0-9a-f]{64}$"), ctx: Ctx = Depends(allow("run.read"))) -> Response:
    from loopml.serve.batch import read_batch_file

    data, media_type = read_batch_file(ctx.ws, batch_id, digest)
    return Response(data, media_type=media_type, headers={"X-Loopml-Digest": digest})
