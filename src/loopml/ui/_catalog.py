"""Datasets (versions, profiles, contracts, validation) and models (versions, aliases, card, gates)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from loopml.governance.model_card import CARD_FIELDS, model_card, set_card_fields

from loopml.ingest import get_dataset_version, list_datasets
from loopml.ingest import list_versions as dataset_versions
from loopml.kernel.exceptions import NotFoundError
from loopml.register import alias_history, get_model, list_aliases, list_models, list_versions, resolve
from loopml.tracking import get_run
from loopml.ui._auth import UiCtx
from loopml.ui._core import Form, Page, first, url
from loopml.validate import get_contract, render_profile_html, validate_dataset

__all__ = ["card_html", "card_markdown", "dataset", "dataset_version", "datasets", "edit_card", "model",
           "model_version", "models", "profile_html"]

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
    tags = mv.tags or {}
    return Page("model_version.html", {
        "title": f"{name}/{version}", "mv": mv, "run": run, "evaluation": evaluation,
        "slices": evaluation.get("slices") or {}, "gates": (mv.gate_report or {}).get("outcomes", []),
        "signature": (mv.signature or {}).get("columns", {}),
        "card_fields": [(f, tags.get(f"card.{f}")) for f in CARD_FIELDS],
    })


def card_html(request: Request, ctx: UiCtx) -> Response:
    """The version's model card as self-contained HTML (inline styles only, no script)."""
    card = model_card(ctx.ws, f"{request.path_params['name']}/{request.path_params['version']}")
    return HTMLResponse(card.to_html(), headers={"Content-Security-Policy": FRAME_CSP,
                                                 "X-Content-Type-Options": "nosniff"})


def card_markdown(request: Request, ctx: UiCtx) -> Response:
    """The version's model card as Markdown (a download)."""
    name, version = request.path_params["name"], request.path_params["version"]
    card = model_card(ctx.ws, f"{name}/{version}")
    return PlainTextResponse(card.to_markdown(), media_type="text/markdown; charset=utf-8", headers={
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="model-card-{name}-{version}.md"'})


def edit_card(request: Request, ctx: UiCtx, form: Form) -> str:
    """Save the card's editable fields (owner, intended use, limitations); an empty field clears it."""
    name, version = request.path_params["name"], request.path_params["version"]
    fields: dict[str, str | None] = {f: first(form, f) or None for f in CARD_FIELDS if f in form}
    set_card_fields(ctx.ws, f"{name}/{version}", reason=first(form, "reason") or None, **fields)
    return url(request, f"/models/{name}/{version}", msg=f"model card of {name}/{version} saved")
