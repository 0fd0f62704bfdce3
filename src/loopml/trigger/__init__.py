"""Triggers: schedule, new data, alert and manual, each firing a run request with its context."""

from loopml.trigger._evaluate import check_triggers
from loopml.trigger._requests import (
    REQUEST_LEASE_TTL_S,
    claim_next_request,
    finish_request,
    get_run_request,
    record_progress,
    request_lease,
    submit_run,
)
from loopml.trigger._triggers import (
    TRIGGER_KINDS,
    RunRequestRecord,
    TriggerRecord,
    add_trigger,
    fire_trigger,
    get_trigger,
    list_run_requests,
    list_triggers,
    remove_trigger,
    set_trigger_enabled,
)

__all__ = [
    "REQUEST_LEASE_TTL_S",
    "TRIGGER_KINDS",
    "RunRequestRecord",
    "TriggerRecord",
    "add_trigger",
    "check_triggers",
    "claim_next_request",
    "finish_request",
    "fire_trigger",
    "get_run_request",
    "get_trigger",
    "list_run_requests",
    "list_triggers",
    "record_progress",
    "remove_trigger",
    "request_lease",
    "set_trigger_enabled",
    "submit_run",
]
