"""``/endpoints``, ``/rollouts`` and ``/requests``: deploy, rollout status, promote / rollback / pause / resume /
advance / analyze; which versions served an endpoint in a window, which version answered a request."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from loopml.deploy import (
    advance,
    deploy,
    get_endpoint,
    get_rollout,
    list_endpoints,
    list_rollouts,
    pause,
    promote,
    resume,
    rollback,
    traffic_history,
)
from loopml.rollout import served_between, who_answered
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.rollout import analyze_endpoint
from loopml.server._pagination import Page, PageParams, page_of, page_params
from loopml.server._schemas import (
    AnswerOut,
    DecisionOut,
    DeployIn,
    EndpointOut,
    ReasonIn,
    RequiredReasonIn,
    RolloutOut,
    RolloutStatusOut,
    ServedOut,
    TrafficOut,
)

router = APIRouter(tags=["deployments"], responses=ERROR_RESPONSES)

ENDPOINT = Path(min_length=1, max_length=128, description="Endpoint name")


@router.get("/endpoints", response_model=Page[EndpointOut], summary="List endpoints")
def endpoints(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return page_of(list_endpoints(ctx.ws), page)


@router.get("/endpoints/{endpoint}", response_model=EndpointOut, summary="Show an endpoint and its traffic policy")
def show(endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return get_endpoint(ctx.ws, endpoint).to_dict()


@router.get("/endpoints/{endpoint}/traffic", response_model=Page[TrafficOut], summary="Every policy it had")
def traffic(endpoint: str = ENDPOINT, page: PageParams = Depends(page_params),
            ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return page_of(traffic_history(ctx.ws, endpoint), page)


@router.get("/endpoints/{endpoint}/served", response_model=ServedOut,
            summary="Which versions served the endpoint between two times")
def served(endpoint: str = ENDPOINT,
           since: str | None = Query(None, max_length=64, description="ISO time or an age such as 1h, 2d "
                                                                       "(default: the first traffic change)"),
           until: str | None = Query(None, max_length=64, description="ISO time or an age (default: now)"),
           ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return served_between(ctx.ws, endpoint, since, until).to_dict()


@router.get("/requests/{request_id}/answers", response_model=Page[AnswerOut],
            summary="Which model version answered a request (and any shadow that scored it)")
def answers(request_id: str = Path(min_length=1, max_length=256, description="The request id (X-Request-ID)"),
            endpoint: str | None = Query(None, min_length=1, max_length=128,
                                         description="Only this endpoint (default: every logged one)"),
            page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return page_of(who_answered(ctx.ws, request_id, endpoint=endpoint), page)


@router.post("/endpoints/{endpoint}/deploy", response_model=RolloutOut, status_code=201,
             summary="Deploy a model version with a strategy")
def deploy_(body: DeployIn, endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("deployment.write"))) -> dict[str, Any]:
    return deploy(ctx.ws, endpoint, body.model_ref, strategy=body.strategy, override_reason=body.override_reason,
                  **body.options.model_dump(exclude_none=True)).to_dict()


@router.get("/endpoints/{endpoint}/rollout", response_model=RolloutStatusOut, summary="The endpoint's rollout")
def status(endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    rollout = get_rollout(ctx.ws, endpoint)
    return {"endpoint": endpoint, "rollout": rollout.to_dict() if rollout else None}


@router.post("/endpoints/{endpoint}/rollout/promote", response_model=RolloutOut, summary="Promote the candidate")
def promote_(endpoint: str = ENDPOINT, body: ReasonIn | None = None,
             ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return promote(ctx.ws, endpoint, reason=body.reason if body else None).to_dict()


@router.post("/endpoints/{endpoint}/rollout/rollback", response_model=RolloutOut, summary="Roll back to the baseline")
def rollback_(body: RequiredReasonIn, endpoint: str = ENDPOINT,
              ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return rollback(ctx.ws, endpoint, reason=body.reason).to_dict()


@router.post("/endpoints/{endpoint}/rollout/pause", response_model=RolloutOut, summary="Pause the rollout")
def pause_(endpoint: str = ENDPOINT, body: ReasonIn | None = None,
           ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return pause(ctx.ws, endpoint, reason=body.reason if body else None).to_dict()


@router.post("/endpoints/{endpoint}/rollout/resume", response_model=RolloutOut, summary="Resume the rollout")
def resume_(endpoint: str = ENDPOINT, body: ReasonIn | None = None,
            ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return resume(ctx.ws, endpoint, reason=body.reason if body else None).to_dict()


@router.post("/endpoints/{endpoint}/rollout/advance", response_model=RolloutOut, summary="Move to the next step")
def advance_(endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return advance(ctx.ws, endpoint).to_dict()


@router.post("/endpoints/{endpoint}/rollout/analyze", response_model=DecisionOut,
             summary="Analyse the running rollout once, now, and apply its decision")
def analyze(endpoint: str = ENDPOINT, ctx: Ctx = Depends(allow("rollout.write"))) -> dict[str, Any]:
    return analyze_endpoint(ctx.ws, endpoint).to_dict()


@router.get("/rollouts", response_model=Page[RolloutOut], summary="List rollouts")
def rollouts(status: Literal["running", "paused", "promoted", "rolled_back"] | None = Query(None),
             page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("deployment.read"))) -> dict[str, Any]:
    return page_of(list_rollouts(ctx.ws, status=status), page)
