"""``/lineage``: the graph around any node, as JSON, Graphviz DOT or Mermaid."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from loopml.metadata.lineage import lineage
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._schemas import LineageOut

router = APIRouter(tags=["lineage"], responses=ERROR_RESPONSES)

_TEXT = {"dot": "text/vnd.graphviz", "mermaid": "text/plain"}


@router.get("/lineage", response_model=LineageOut, summary="The lineage graph around an object",
            responses={200: {"content": {"text/vnd.graphviz": {"schema": {"type": "string"}},
                                         "text/plain": {"schema": {"type": "string"}}}}})
def graph(
    object: str = Query(..., min_length=3, max_length=300,
                        description="TYPE:ID, e.g. model:churn@champion, dataset_version:weather@2, run:<id>"),
    direction: Literal["upstream", "downstream", "both"] = Query("both"),
    max_depth: int = Query(50, ge=1, le=200),
    format: Literal["json", "dot", "mermaid"] = Query("json"),
    ctx: Ctx = Depends(allow("lineage.read")),
) -> Any:
    found = lineage(ctx.ws, object, direction=direction, max_depth=max_depth)
    if format == "json":
        return found.to_dict()
    text = found.to_dot() if format == "dot" else found.to_mermaid()
    return PlainTextResponse(text, media_type=_TEXT[format])
