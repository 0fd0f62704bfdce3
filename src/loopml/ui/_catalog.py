"""Datasets (versions, profiles, contracts, validation) and models (versions, aliases, card, gates)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from loopml.ingest import get_dataset_version, list_datasets
from loopml.ingest import list_versions as dataset_versions
from loopml.kernel.exceptions import NotFoundError
from loopml.register import alias_history, get_model, list_aliases, list_models, list_versions, resolve
from loopml.tracking import get_run
from loopml.ui._auth import UiCtx
from loopml.ui._core import Page
from loopml.validate import get_contract, render_profile_html, validate_dataset

__all__ = ["dataset", "dataset_version", "datasets", "model", "model_version", "models", "profile_html"]

#: Embedded reports (profile, monitor) are self-contained HTML with inline CSS, shown in a frame.
FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def datasets(request: Request, ctx: UiCtx) -> Page:
    return Page("datasets.html", {"title": "Datasets", "datasets": list_datasets(ctx.ws)})


def _contract(ctx: UiCtx, name: str) -> Any:
    try:
        return get_contract(ctx.ws, name)
    except NotFoundError:
        return None


def dataset(request: Request, ctx: UiCtx) -> Page:
    name = request.path_params["name"]
    versions = dataset_versions(ctx.ws, name)
    contract = _contract(ctx, name)
    return Page("dataset.html", {"title": f"Dataset {name}", "name": name, "versions": versions[::-1],
                                 "contract": contract.to_yaml() if contract is not None else None})


def dataset_version(request: Request, ctx: UiCtx) -> Page:
    name, version = request.path_params["name"], request.path_params["version"]
    rec = get_dataset_version(ctx.ws, f"{name}@{version}")
    contract = _contract(ctx, name)
    report = None
    if contract is not None and request.query_params.get("validate"):
        report = validate_dataset(ctx.ws, rec, contract)
    return Page("dataset_version.html", {"title": f"{name}@{version}", "rec": rec, "contract": contract,
                                         "report": report, "validate": bool(request.query_params.get("validate"))})


def profile_html(request: Request, ctx: UiCtx) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    rec = get_dataset_version(ctx.ws, f"{name}@{version}")
    contract = _contract(ctx, name)
    report = validate_dataset(ctx.ws, rec, contract) if contract is not None and request.query_params.get("validate") else None
    html = render_profile_html(rec, contract=contract, report=report)
    return HTMLResponse(html, headers={"Content-Security-Policy": FRAME_CSP, "X-Content-Type-Options": "nosniff"})


def models(request: Request, ctx: UiCtx) -> Page:
    return Page("models.html", {"title": "Models", "models": list_models(ctx.ws)})


def model(request: Request, ctx: UiCtx) -> Page:
    name = request.path_params["name"]
    rec = get_model(ctx.ws, name)
    versions = list_versions(ctx.ws, name)[::-1]
    return Page("model.html", {"title": f"Model {name}", "model": rec, "versions": versions,
                               "aliases": list_aliases(ctx.ws, name), "history": alias_history(ctx.ws, name)[::-1]})


def model_version(request: Request, ctx: UiCtx) -> Page:
    name, version = request.path_params["name"], request.path_params["version"]
    mv = resolve(ctx.ws, f"{name}/{version}")
    run = None
    if mv.run_id:
        try:
            run = get_run(ctx.ws, mv.run_id)
        except NotFoundError:
            run = None
    evaluation = mv.evaluation or {}
    return Page("model_version.html", {
        "title": f"{name}/{version}", "mv": mv, "run": run, "evaluation": evaluation,
        "slices": evaluation.get("slices") or {}, "gates": (mv.gate_report or {}).get("outcomes", []),
        "signature": (mv.signature or {}).get("columns", {}),
    })
