"""``/endpoints/{endpoint}/predictions`` and ``/feedback``: read the prediction log (a page of rows, a count, a
Parquet/CSV export), add true labels from an uploaded file, compact a day's files."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loopml.predictions import (
    compact,
    count_predictions,
    json_records,
    query_predictions,
    read_feedback_file,
    record_feedback,
)
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_params, page_probe
from loopml.server._schemas import CompactIn, CompactOut, CountOut, FeedbackOut
from loopml.server._uploads import UPLOAD_BODY, spooled_upload

router = APIRouter(prefix="/endpoints/{endpoint}", tags=["predictions"], responses=ERROR_RESPONSES)

ENDPOINT = Path(min_length=1, max_length=128, description="Endpoint name")
SINCE = Query(None, max_length=64, description="Start: an age such as 15m, 1h, 7d, or an ISO time")
UNTIL = Query(None, max_length=64, description="End (exclusive): an age or an ISO time")
VERSION = Query(None, ge=1, le=2_147_483_647, description="Only this model version")
#: The export's row count (a CSV's lines are not its rows: a value may hold a newline).
ROWS_HEADER = "X-Loopml-Rows"
_MEDIA = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}


@router.get("/predictions", response_model=Page[dict[str, Any]],
            summary="Logged predictions in a time window, oldest first")
def predictions(endpoint: str = ENDPOINT, since: str | None = SINCE, until: str | None = UNTIL,
                model_version: int | None = VERSION, page: PageParams = Depends(page_params),
                ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    df = query_predictions(ctx.ws, endpoint, since=since, until=until, model_version=model_version,
                           limit=page.offset + page.limit + 1)
    return page_probe(json_records(df), page)


@router.get("/predictions/export", summary="Every logged prediction in the window as one Parquet or CSV file",
            responses={200: {"content": {m: {"schema": {"type": "string", "format": "binary"}}
                                         for m in _MEDIA.values()},
                             "headers": {ROWS_HEADER: {"schema": {"type": "integer"},
                                                       "description": "How many rows the file holds"}}}})
def export(endpoint: str = ENDPOINT, format: Literal["parquet", "csv"] = Query("parquet"),
           since: str | None = SINCE, until: str | None = UNTIL, model_version: int | None = VERSION,
           ctx: Ctx = Depends(allow("deployment.read"))) -> Response:
    import io

    df = query_predictions(ctx.ws, endpoint, since=since, until=until, model_version=model_version)
    buffer = io.BytesIO()
    if format == "parquet":
        df.to_parquet(buffer, index=False)
    else:
        df.to_csv(buffer, index=False)
    return Response(buffer.getvalue(), media_type=_MEDIA[format], headers={ROWS_HEADER: str(len(df))})


@router.get("/predictions/count", response_model=CountOut, summary="How many predictions the window holds")
def count(endpoint: str = ENDPOINT, since: str | None = SINCE, until: str | None = UNTIL,
          model_version: int | None = VERSION, ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    n = count_predictions(ctx.ws, endpoint, since=since, until=until, model_version=model_version)
    return {"endpoint": endpoint, "count": n}


@router.post("/feedback", response_model=FeedbackOut, status_code=201,
             summary="Store true labels from an uploaded CSV or Parquet file (request_id, label [, ts, row])",
             openapi_extra={"requestBody": UPLOAD_BODY})
async def feedback(request: Request, endpoint: str = ENDPOINT,
                   format: Literal["csv", "parquet"] | None = Query(None, description="Default: from Content-Type"),
                   ctx: Ctx = Depends(allow("monitor.write"))) -> dict[str, Any]:
    async with spooled_upload(request, format) as (path, fmt):
        labels = await run_in_threadpool(read_feedback_file, path, fmt)
    return (await run_in_threadpool(record_feedback, ctx.ws, endpoint, labels)).to_dict()


@router.post("/predictions/compact", response_model=CompactOut, summary="Merge a day's small log files, one per hour")
def compact_(body: CompactIn, endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("deployment.write"))) -> dict[str, Any]:
    return compact(ctx.ws, endpoint, body.date).to_dict()
