"""Model cards (``/models/{name}/versions/{version}/card``), end-to-end traces (``/trace``) and
data protection (``/privacy``: retention policies, erasure of one subject's logged rows)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from loopml.governance.model_card import model_card, set_card_fields
from loopml.governance.trace import TraceResult, trace_dataset, trace_request
from loopml.predictions import (
    apply_retention,
    erase_subject,
    list_retention,
    set_retention,
)
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES

router = APIRouter(tags=["governance"], responses=ERROR_RESPONSES)

NAME = Path(min_length=1, max_length=128, description="Registered model name")
VERSION = Path(ge=1, le=2_147_483_647)
ENDPOINT = Path(min_length=1, max_length=128, description="Endpoint name")
_TEXT = {"dot": "text/vnd.graphviz", "mermaid": "text/plain"}
_TEXT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/vnd.graphviz": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}}}


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceOut(_Out):
    summary: dict[str, Any]
    graph: dict[str, Any]


class CardFieldsIn(_In):
    owner: str | None = Field(None, max_length=10_000)
    intended_use: str | None = Field(None, max_length=10_000)
    limitations: str | None = Field(None, max_length=10_000)
    reason: str | None = Field(None, max_length=2000)


class RetentionIn(_In):
    days: int = Field(ge=1, le=36_500)


class RetentionOut(_Out):
    endpoint: str
    days: int
    updated_at: str
    updated_by: str
    last_applied_at: str | None


class RetentionApplyIn(_In):
    endpoint: str | None = Field(None, min_length=1, max_length=128)


class RetentionResultOut(_Out):
    endpoint: str
    days: int
    cutoff: str
    prediction_files: int
    prediction_rows: int
    feedback_files: int
    feedback_rows: int


class EraseIn(_In):
    column: str = Field(min_length=1, max_length=256, description="A log column: f_<feature> or request_id")
    #: In the body, never the URL: a subject's key must not reach access logs.
    value: str = Field(min_length=1, max_length=1000)
    endpoint: str | None = Field(None, min_length=1, max_length=128)


class EraseOut(_Out):
    column: str
    value_sha256: str
    endpoints: list[str]
    prediction_rows: int
    feedback_rows: int
    files_rewritten: int
    files_deleted: int
    per_endpoint: dict[str, dict[str, int]]


def _trace_response(result: TraceResult, format: str) -> Any:
    if format == "json":
        return result.to_dict()
    text = result.to_dot() if format == "dot" else result.to_mermaid()
    return PlainTextResponse(text, media_type=_TEXT[format])


@router.get("/models/{name}/versions/{version}/card", response_model=dict[str, Any],
            summary="A model version's card: JSON, Markdown or self-contained HTML",
            responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}},
                                         "text/html": {"schema": {"type": "string"}}}}})
def card(name: str = NAME, version: int = VERSION, format: Literal["json", "md", "html"] = Query("json"),
         ctx: Ctx = Depends(allow("model.read"))) -> Any:
    found = model_card(ctx.ws, f"{name}/{version}")
    if format == "md":
        return PlainTextResponse(found.to_markdown(), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(found.to_html())
    return found.to_dict()


@router.patch("/models/{name}/versions/{version}/card", response_model=dict[str, Any],
              summary="Edit a card's owner, intended use and limitations")
def edit_card(body: CardFieldsIn, name: str = NAME, version: int = VERSION,
              ctx: Ctx = Depends(allow("model.register"))) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"reason"})
    return set_card_fields(ctx.ws, f"{name}/{version}", reason=body.reason, **fields).to_dict()


@router.get("/trace/requests/{request_id}", response_model=TraceOut, responses=_TEXT_RESPONSES,
            summary="Everything behind one prediction: version, run, code, data, gates, approvals, rollout")
def trace_prediction(request_id: str = Path(min_length=1, max_length=256),
                     endpoint: str | None = Query(None, min_length=1, max_length=128),
                     format: Literal["json", "dot", "mermaid"] = Query("json"),
                     ctx: Ctx = Depends(allow("lineage.read"))) -> Any:
    return _trace_response(trace_request(ctx.ws, request_id, endpoint=endpoint), format)


@router.get("/trace/datasets/{ref}", response_model=TraceOut, responses=_TEXT_RESPONSES,
            summary="Every model, deployment and prediction batch downstream of a dataset version")
def trace_data(ref: str = Path(min_length=1, max_length=300, description="NAME@VERSION"),
               format: Literal["json", "dot", "mermaid"] = Query("json"),
               ctx: Ctx = Depends(allow("lineage.read"))) -> Any:
    return _trace_response(trace_dataset(ctx.ws, ref), format)


@router.get("/privacy/retention", response_model=list[RetentionOut], summary="Retention policies")
def retention(ctx: Ctx = Depends(allow("deployment.read"))) -> list[dict[str, Any]]:
    return [r.to_dict() for r in list_retention(ctx.ws)]


@router.put("/privacy/retention/{endpoint}", response_model=RetentionOut,
            summary="Keep an endpoint's predictions and feedback N days (admin)")
def put_retention(body: RetentionIn, endpoint: str = ENDPOINT,
                  ctx: Ctx = Depends(allow("privacy.admin"))) -> dict[str, Any]:
    return set_retention(ctx.ws, endpoint, body.days).to_dict()


@router.post("/privacy/retention/apply", response_model=list[RetentionResultOut],
             summary="Delete what the retention policies no longer keep (admin)")
def apply(body: RetentionApplyIn | None = None, ctx: Ctx = Depends(allow("privacy.admin"))) -> list[dict[str, Any]]:
    return [r.to_dict() for r in apply_retention(ctx.ws, body.endpoint if body else None)]


@router.post("/privacy/erase", response_model=EraseOut,
             summary="Erase every logged row about one subject, and its feedback (admin; audited without the value)")
def erase(body: EraseIn, ctx: Ctx = Depends(allow("privacy.admin"))) -> dict[str, Any]:
    return erase_subject(ctx.ws, body.column, body.value, endpoint=body.endpoint).to_dict()
