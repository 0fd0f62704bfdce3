"""``/triggers`` and ``/run-requests``: add, list, show, enable, disable, fire; what the firings asked for,
and recipes submitted to run on the server's scheduler (``loopml run`` against a server)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_of, page_params, page_probe
from loopml.server._schemas import FireIn, RunIn, RunRequestOut, TriggerIn, TriggerOut
from loopml.trigger import (
    add_trigger,
    fire_trigger,
    get_run_request,
    get_trigger,
    list_run_requests,
    list_triggers,
    set_trigger_enabled,
)

router = APIRouter(tags=["triggers"], responses=ERROR_RESPONSES)

NAME = Path(min_length=1, max_length=128, description="Trigger name")


@router.get("/triggers", response_model=Page[TriggerOut], summary="List triggers")
def triggers(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("trigger.read"))) -> dict[str, Any]:
    return page_of(list_triggers(ctx.ws), page)


@router.post("/triggers", response_model=TriggerOut, status_code=201,
             summary="Add a trigger that runs a recipe (a parsed recipe spec) when it fires")
def add(body: TriggerIn, ctx: Ctx = Depends(allow("trigger.write"))) -> dict[str, Any]:
    from loopml.recipes import parse_spec

    # Checked again here: the server stores only recipes its scheduler can run.
    recipe = parse_spec(body.recipe, origin=f"trigger {body.name!r} recipe").model_dump(by_alias=True, mode="json")
    return add_trigger(ctx.ws, body.name, body.kind, recipe=recipe, recipe_path=body.recipe_path,
                       config=body.config).to_dict()


@router.post("/triggers/{name}/enable", response_model=TriggerOut, summary="Enable a trigger")
def enable(name: str = NAME, ctx: Ctx = Depends(allow("trigger.write"))) -> dict[str, Any]:
    return set_trigger_enabled(ctx.ws, name, True).to_dict()


@router.post("/triggers/{name}/disable", response_model=TriggerOut, summary="Disable a trigger (it keeps its state)")
def disable(name: str = NAME, ctx: Ctx = Depends(allow("trigger.write"))) -> dict[str, Any]:
    return set_trigger_enabled(ctx.ws, name, False).to_dict()


@router.get("/triggers/{name}", response_model=TriggerOut, summary="Show a trigger")
def show(name: str = NAME, ctx: Ctx = Depends(allow("trigger.read"))) -> dict[str, Any]:
    return get_trigger(ctx.ws, name).to_dict()


@router.post("/triggers/{name}/fire", response_model=RunRequestOut, status_code=201,
             summary="Fire a trigger now (queues a run request)")
def fire(name: str = NAME, body: FireIn | None = None, ctx: Ctx = Depends(allow("trigger.fire"))) -> dict[str, Any]:
    return fire_trigger(ctx.ws, name, reason=body.reason if body else None,
                        context=body.context if body else None).to_dict()


@router.get("/run-requests", response_model=Page[RunRequestOut], summary="Run requests, newest first")
def run_requests(status: str | None = Query(None, max_length=32), page: PageParams = Depends(page_params),
                 ctx: Ctx = Depends(allow("trigger.read"))) -> dict[str, Any]:
    found = list_run_requests(ctx.ws, status=status, limit=page.offset + page.limit + 1)
    return page_probe(found, page)


@router.post("/run-requests", response_model=RunRequestOut, status_code=201,
             summary="Submit a recipe: the scheduler runs it as the caller (poll the request for its result)")
def submit(body: RunIn, ctx: Ctx = Depends(allow("run.write"))) -> dict[str, Any]:
    from loopml.recipes import submit_recipe

    return submit_recipe(ctx.ws, body.recipe, reason=body.reason).to_dict()  # type: ignore[no-any-return]


@router.get("/run-requests/{request_id}", response_model=RunRequestOut, summary="One run request, with its result")
def run_request(request_id: int = Path(ge=1, le=2**63 - 1), ctx: Ctx = Depends(allow("run.read"))) -> dict[str, Any]:
    return get_run_request(ctx.ws, request_id).to_dict()
