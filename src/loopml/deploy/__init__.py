"""Deployments: endpoints, their traffic policies, and rollouts between model versions."""

from loopml.deploy._endpoints import (
    EndpointRecord,
    TrafficRecord,
    get_endpoint,
    list_endpoints,
    make_policy,
    shadow_endpoint_name,
    traffic_history,
    versions_between,
)
from loopml.deploy._rollouts import (
    DEFAULTS,
    STRATEGIES,
    RolloutRecord,
    advance,
    deploy,
    get_rollout,
    list_rollouts,
    pause,
    promote,
    record_evidence,
    resume,
    rollback,
)

__all__ = [
    "DEFAULTS",
    "STRATEGIES",
    "EndpointRecord",
    "RolloutRecord",
    "TrafficRecord",
    "advance",
    "deploy",
    "get_endpoint",
    "get_rollout",
    "list_endpoints",
    "list_rollouts",
    "make_policy",
    "pause",
    "promote",
    "record_evidence",
    "resume",
    "rollback",
    "shadow_endpoint_name",
    "traffic_history",
    "versions_between",
]
