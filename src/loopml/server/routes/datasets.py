"""``/datasets``: list, versions, show, ingest an uploaded CSV or Parquet file (checked against its contract);
the contract (read, replace), validating a version against it, and a version's profile (JSON or HTML)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from loopml.ingest import DatasetVersionRecord, get_dataset_version, ingest, list_datasets, list_versions
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.validate import profile_page, profile_summary
from loopml.server._pagination import Page, PageParams, page_of, page_params
from loopml.server._schemas import (
    ContractIn,
    ContractOut,
    DatasetOut,
    DatasetVersionOut,
    IngestedOut,
    ProfileOut,
    ValidateIn,
    ValidationReportOut,
)
from loopml.server._uploads import UPLOAD_BODY, spooled_upload
from loopml.validate import Contract, ValidationReport, get_contract, set_contract, validate_dataset
from loopml.workspace import Workspace

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=ERROR_RESPONSES)

NAME = Path(min_length=1, max_length=128, description="Dataset name")
VERSION = Path(pattern=r"^([1-9][0-9]{0,8}|latest)$", description="A version number or 'latest'")


@router.get("", response_model=Page[DatasetOut], summary="List datasets")
def datasets(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("dataset.read"))) -> dict[str, Any]:
    return page_of(list_datasets(ctx.ws), page)


# ``exclude_unset``: a version listed or ingested is sent without its profile, as ``to_dict(profile=False)``.
@router.get("/{name}/versions", response_model=Page[DatasetVersionOut], response_model_exclude_unset=True,
            summary="List a dataset's versions")
def versions(name: str = NAME, page: PageParams = Depends(page_params),
             ctx: Ctx = Depends(allow("dataset.read"))) -> dict[str, Any]:
    return page_of(list_versions(ctx.ws, name), page, to_dict=lambda r: r.to_dict(profile=False))


@router.get("/{name}/versions/{version}", response_model=DatasetVersionOut, summary="Show one version with its profile")
def show(name: str = NAME, version: str = VERSION, ctx: Ctx = Depends(allow("dataset.read"))) -> dict[str, Any]:
    return get_dataset_version(ctx.ws, f"{name}@{version}").to_dict()


@router.post("/{name}/versions", response_model=IngestedOut, response_model_exclude_unset=True, status_code=201,
             summary="Ingest an uploaded CSV or Parquet file as a new version, checked against its contract",
             openapi_extra={"requestBody": UPLOAD_BODY})
async def upload(request: Request, name: str = NAME,
                 format: Literal["csv", "parquet"] | None = Query(None, description="Default: from Content-Type"),
                 description: str | None = Query(None, max_length=2000),
                 target: str | None = Query(None, max_length=128, description="The label column"),
                 filename: str | None = Query(None, max_length=1024, description="The uploaded file's name, for the "
                                                                                 "record and the lineage graph"),
                 ctx: Ctx = Depends(allow("dataset.write"))) -> dict[str, Any]:
    async with spooled_upload(request, format) as (path, fmt):
        record = await run_in_threadpool(ingest, ctx.ws, path, name, description=description, format=fmt,
                                         target=target, source_name=f"upload:{filename or path.name}")
    report = await run_in_threadpool(_validate, ctx.ws, record)
    return {**record.to_dict(profile=False), "validation": report.to_dict()}


def _validate(ws: Workspace, record: DatasetVersionRecord) -> ValidationReport:
    """The new version against its dataset's contract (as ``loopml data ingest`` reports it)."""
    return validate_dataset(ws, record, get_contract(ws, record.name))


@router.get("/{name}/contract", response_model=ContractOut, summary="The dataset's contract")
def contract(name: str = NAME, ctx: Ctx = Depends(allow("dataset.read"))) -> dict[str, Any]:
    return get_contract(ctx.ws, name).to_dict()


@router.put("/{name}/contract", response_model=ContractOut, summary="Replace the dataset's contract (audited)")
def put_contract(body: ContractIn, name: str = NAME, ctx: Ctx = Depends(allow("dataset.write"))) -> dict[str, Any]:
    return set_contract(ctx.ws, name, Contract.from_dict(body.contract), reason=body.reason).to_dict()


@router.post("/{name}/versions/{version}/validate", response_model=ValidationReportOut,
             summary="Check a version against its contract (or the contract sent); the report, never stored")
def validate(name: str = NAME, version: str = VERSION, body: ValidateIn | None = None,
             ctx: Ctx = Depends(allow("dataset.read"))) -> dict[str, Any]:
    given = Contract.from_dict(body.contract) if body and body.contract is not None else None
    return validate_dataset(ctx.ws, f"{name}@{version}", given).to_dict()


@router.get("/{name}/versions/{version}/profile", response_model=ProfileOut,
            summary="A version's profile with the issues found in it, or (format=html) the self-contained report",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
def profile(name: str = NAME, version: str = VERSION, format: Literal["json", "html"] = Query("json"),
            ctx: Ctx = Depends(allow("dataset.read"))) -> Any:
    if format == "json":
        return profile_summary(ctx.ws, f"{name}@{version}")
    stem, html = profile_page(ctx.ws, f"{name}@{version}")
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="{stem}.profile.html"'})
