"""One router per noun; :data:`ROUTERS` is what the app mounts, in order."""

from __future__ import annotations

from fastapi import APIRouter

from loopml.server.routes import (
    alerts,
    audit,
    batches,
    datasets,
    deployments,
    identity,
    lineage,
    models,
    monitors,
    predictions,
    runs,
    triggers,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    identity.router,
    datasets.router,
    runs.router,
    models.router,
    deployments.router,
    predictions.router,
    batches.router,
    monitors.router,
    alerts.router,
    triggers.router,
    lineage.router,
    audit.router,
]
