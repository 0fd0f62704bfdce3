"""``/models``: the registry — models, versions, aliases (set, delete, history)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loopml.governance.identity import Identity, alias_action
from loopml.kernel.exceptions import NotFoundError
from loopml.register import (
    alias_history,
    delete_alias,
    get_model,
    list_aliases,
    list_models,
    list_versions,
    resolve,
    set_alias,
)
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_of, page_params
from loopml.server._schemas import (
    AliasChangeOut,
    AliasOut,
    ExportOut,
    ModelOut,
    ModelVersionOut,
    SetAliasIn,
)
from loopml.server._uploads import UPLOAD_BODY, spooled_upload
from loopml.workspace import Workspace

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)

NAME = Path(min_length=1, max_length=128, description="Registered model name")
ALIAS = Path(min_length=1, max_length=128, description="Alias, e.g. champion, challenger")


def _alias_action(request: Request, _identity: Identity, _ws: Workspace) -> str:
    # Protected aliases (champion) need an approval: a different action.
    return alias_action(str(request.path_params.get("alias", "")))


@router.get("", response_model=Page[ModelOut], summary="List registered models")
def models(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return page_of(list_models(ctx.ws), page)


@router.get("/resolve", response_model=ModelVersionOut, summary="Resolve NAME@ALIAS or NAME/VERSION")
def resolve_ref(ref: str = Query(..., min_length=1, max_length=300), ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return resolve(ctx.ws, ref).to_dict()


@router.get("/{name}", response_model=ModelOut, summary="Show a model")
def show(name: str = NAME, ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return get_model(ctx.ws, name).to_dict()


@router.get("/{name}/versions", response_model=Page[ModelVersionOut], summary="List a model's versions")
def versions(name: str = NAME, page: PageParams = Depends(page_params),
             ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return page_of(list_versions(ctx.ws, name), page)


@router.get("/{name}/versions/{version}", response_model=ModelVersionOut, summary="Show one model version")
def show_version(name: str = NAME, version: int = Path(ge=1, le=2_147_483_647),
                 ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return resolve(ctx.ws, f"{name}/{version}").to_dict()


@router.get("/{name}/aliases", response_model=list[AliasOut], summary="Where each alias points")
def aliases(name: str = NAME, ctx: Ctx = Depends(allow("model.read"))) -> list[dict[str, Any]]:
    return [a.to_dict() for a in list_aliases(ctx.ws, name)]


@router.get("/{name}/aliases/history", response_model=Page[AliasChangeOut], summary="Every alias move")
def history(name: str = NAME, alias: str | None = Query(None, max_length=128),
            page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return page_of(alias_history(ctx.ws, name, alias), page)


@router.put("/{name}/aliases/{alias}", response_model=AliasOut, summary="Point an alias at a version")
def put_alias(body: SetAliasIn, name: str = NAME, alias: str = ALIAS,
              ctx: Ctx = Depends(allow(_alias_action))) -> dict[str, Any]:
    return set_alias(ctx.ws, name, alias, body.version, reason=body.reason).to_dict()


@router.delete("/{name}/aliases/{alias}", response_model=AliasOut, summary="Remove an alias")
def remove_alias(name: str = NAME, alias: str = ALIAS, reason: str | None = Query(None, max_length=2000),
                 ctx: Ctx = Depends(allow(_alias_action))) -> dict[str, Any]:
    return delete_alias(ctx.ws, name, alias, reason=reason).to_dict()


@router.post("/{name}/versions/{version}/export", response_model=ExportOut, status_code=201,
             summary="Export a version for edge devices (ONNX), checked for parity first; optional body: sample rows",
             openapi_extra={"requestBody": {**UPLOAD_BODY, "required": False}})
async def export(request: Request, name: str = NAME, version: int = Path(ge=1, le=2**31 - 1),
                 format: Literal["onnx"] = Query("onnx"),
                 tolerance: float = Query(1e-4, gt=0, le=1e6, description="Largest absolute difference allowed"),
                 allow_parity_failure: bool = Query(False, description="Record the export even when parity fails"),
                 sample_format: Literal["csv", "parquet"] | None = Query(
                     None, description="The body's format when sample rows are sent (default: from Content-Type)"),
                 ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    from loopml.serve.export import export_model, read_sample

    sample = None
    if int(request.headers.get("content-length") or 0) > 0:
        async with spooled_upload(request, sample_format) as (path, fmt):
            sample = await run_in_threadpool(read_sample, path, fmt)
    with tempfile.TemporaryDirectory(prefix="loopml-export-") as tmp:
        result = await run_in_threadpool(
            lambda: export_model(ctx.ws, f"{name}/{version}", format=format, output=FilePath(tmp) / "model.onnx",
                                 sample=sample, tolerance=tolerance, require_parity=not allow_parity_failure))
    return result.to_dict()


@router.get("/{name}/versions/{version}/exports/{digest}", summary="The bytes of one export of this version",
            responses={200: {"content": {"application/octet-stream": {}}}})
def export_bytes(name: str = NAME, version: int = Path(ge=1, le=2**31 - 1),
                 digest: str = Path(pattern="^[0-9a-f]{64}$"), ctx: Ctx = Depends(allow("model.read"))) -> Response:
    missing = NotFoundError(f"model {name}/{version} has no export {digest[:12]}")
    if not ctx.ws.artifacts.exists(digest):
        raise missing
    data, info = ctx.ws.artifacts.read(digest)  # verified against its digest on read
    if info.meta.get("model") != name or info.meta.get("version") != version or "format" not in info.meta:
        raise missing  # only exports of this version: never a model pickle or another artifact
    return Response(data, media_type=info.media_type, headers={"X-Loopml-Digest": digest})
