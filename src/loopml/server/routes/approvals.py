"""``/approvals``: approval policies, requests and decisions (approve, reject, admin override)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from loopml.governance.approvals import (
    approve,
    get_policy,
    get_request,
    list_policies,
    list_requests,
    override,
    reject,
    request_approval,
    set_policy,
)
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_of, page_params
from loopml.server._schemas import RequiredReasonIn

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=ERROR_RESPONSES)

REQUEST_ID = Path(ge=1, le=2_147_483_647, description="Approval request id")
SCOPE = Path(description="model | endpoint")
NAME = Path(min_length=1, max_length=128, description="Model or endpoint name")


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalPolicyOut(_Out):
    target: str
    scope: str
    name: str
    required: int
    alias: str | None
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str


class ApprovalPolicyIn(_In):
    required: int = Field(ge=0, le=20, description="Approvals needed; 0: none")
    alias: str = Field("champion", min_length=1, max_length=64, description="The alias a model policy protects")
    reason: str | None = Field(None, max_length=2000)


class ApprovalDecisionOut(_Out):
    actor: str
    decision: str
    reason: str
    ts: str


class ApprovalRequestOut(_Out):
    id: int
    model: str
    version: int
    ref: str
    endpoint: str | None
    status: str
    reason: str | None
    requested_by: str
    author: str
    required: int
    approvals: int
    approvers: list[str]
    created_at: str
    decided_at: str | None
    decisions: list[ApprovalDecisionOut]


class ApprovalRequestIn(_In):
    model_ref: str = Field(min_length=3, max_length=300, description="NAME/VERSION or NAME@ALIAS")
    endpoint: str | None = Field(None, min_length=1, max_length=128)
    reason: str | None = Field(None, max_length=2000)


@router.get("/policies", response_model=list[ApprovalPolicyOut], summary="Every approval policy")
def policies(ctx: Ctx = Depends(allow("model.read"))) -> list[dict[str, Any]]:
    return [p.to_dict() for p in list_policies(ctx.ws)]


@router.get("/policies/{scope}/{name}", response_model=ApprovalPolicyOut, summary="One approval policy")
def policy(scope: Literal["model", "endpoint"] = SCOPE, name: str = NAME,
           ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return get_policy(ctx.ws, f"{scope}:{name}").to_dict()


@router.put("/policies/{scope}/{name}", response_model=ApprovalPolicyOut,
            summary="Require N approvals for a model's champion moves or an endpoint's traffic (admin)")
def put_policy(body: ApprovalPolicyIn, scope: Literal["model", "endpoint"] = SCOPE, name: str = NAME,
               ctx: Ctx = Depends(allow("approval.policy"))) -> dict[str, Any]:
    return set_policy(ctx.ws, f"{scope}:{name}", body.required, alias=body.alias, reason=body.reason).to_dict()


@router.post("", response_model=ApprovalRequestOut, status_code=201, summary="Request approvals for a model version")
def create(body: ApprovalRequestIn, ctx: Ctx = Depends(allow("model.register"))) -> dict[str, Any]:
    return request_approval(ctx.ws, body.model_ref, endpoint=body.endpoint, reason=body.reason).to_dict()


@router.get("", response_model=Page[ApprovalRequestOut], summary="List approval requests, newest first")
def requests(status: Literal["pending", "approved", "rejected", "overridden"] | None = Query(None),
             model: str | None = Query(None, min_length=1, max_length=128),
             page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return page_of(list_requests(ctx.ws, status=status, model=model), page)


@router.get("/{request_id}", response_model=ApprovalRequestOut, summary="One approval request and its decisions")
def show(request_id: int = REQUEST_ID, ctx: Ctx = Depends(allow("model.read"))) -> dict[str, Any]:
    return get_request(ctx.ws, request_id).to_dict()


@router.post("/{request_id}/approve", response_model=ApprovalRequestOut,
             summary="Approve (not by the version's author)")
def approve_(body: RequiredReasonIn, request_id: int = REQUEST_ID,
             ctx: Ctx = Depends(allow("approval.decide"))) -> dict[str, Any]:
    return approve(ctx.ws, request_id, reason=body.reason).to_dict()


@router.post("/{request_id}/reject", response_model=ApprovalRequestOut, summary="Reject (final)")
def reject_(body: RequiredReasonIn, request_id: int = REQUEST_ID,
            ctx: Ctx = Depends(allow("approval.decide"))) -> dict[str, Any]:
    return reject(ctx.ws, request_id, reason=body.reason).to_dict()


@router.post("/{request_id}/override", response_model=ApprovalRequestOut,
             summary="Let the version through without its approvals (admin, with a reason)")
def override_(body: RequiredReasonIn, request_id: int = REQUEST_ID,
              ctx: Ctx = Depends(allow("approval.override"))) -> dict[str, Any]:
    return override(ctx.ws, request_id, reason=body.reason).to_dict()
