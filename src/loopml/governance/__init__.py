"""Governance: promotion gates; identities, tokens and role permissions; approvals; traces; model cards.

Names resolve lazily (:mod:`loopml.kernel.lazy`): checking a recipe's gates does not
load identities, approvals or model cards, and no numpy loads until an evaluation is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.kernel.lazy import lazy_exports

# Eager: ``model_card`` is both a function and its module's name, and a lazy name would
# resolve to the module once anything imported ``loopml.governance.model_card`` directly.
from loopml.governance.model_card import ModelCard, model_card, set_card_fields

#: public name -> private module that defines it
_HOMES: dict[str, str] = {
    "ApprovalPolicyRecord": "loopml.governance.approvals",
    "ApprovalRequestRecord": "loopml.governance.approvals",
    "approve": "loopml.governance.approvals",
    "get_policy": "loopml.governance.approvals",
    "get_request": "loopml.governance.approvals",
    "list_policies": "loopml.governance.approvals",
    "list_requests": "loopml.governance.approvals",
    "override": "loopml.governance.approvals",
    "reject": "loopml.governance.approvals",
    "request_approval": "loopml.governance.approvals",
    "set_policy": "loopml.governance.approvals",
    "ChangeRule": "loopml.governance.gates",
    "FairnessRule": "loopml.governance.gates",
    "GateChecker": "loopml.governance.gates",
    "GateOutcome": "loopml.governance.gates",
    "GateReport": "loopml.governance.gates",
    "GateRule": "loopml.governance.gates",
    "PromotionGate": "loopml.governance.gates",
    "ThresholdRule": "loopml.governance.gates",
    "check_gates": "loopml.governance.gates",
    "parse_rule": "loopml.governance.gates",
    "parse_rules": "loopml.governance.gates",
    "ROLE_PERMISSIONS": "loopml.governance.identity",
    "ROLES": "loopml.governance.identity",
    "Identity": "loopml.governance.identity",
    "IssuedToken": "loopml.governance.identity",
    "NotAuthenticated": "loopml.governance.identity",
    "TokenRecord": "loopml.governance.identity",
    "UserRecord": "loopml.governance.identity",
    "authenticate": "loopml.governance.identity",
    "authorize": "loopml.governance.identity",
    "create_token": "loopml.governance.identity",
    "create_user": "loopml.governance.identity",
    "disable_user": "loopml.governance.identity",
    "get_user": "loopml.governance.identity",
    "grant": "loopml.governance.identity",
    "list_tokens": "loopml.governance.identity",
    "list_users": "loopml.governance.identity",
    "local_identity": "loopml.governance.identity",
    "revoke_role": "loopml.governance.identity",
    "revoke_token": "loopml.governance.identity",
    "TraceResult": "loopml.governance.trace",
    "trace_dataset": "loopml.governance.trace",
    "trace_request": "loopml.governance.trace",
}

__all__ = [
    "ApprovalPolicyRecord",
    "ApprovalRequestRecord",
    "ModelCard",
    "TraceResult",
    "approve",
    "get_policy",
    "get_request",
    "list_policies",
    "list_requests",
    "model_card",
    "override",
    "reject",
    "request_approval",
    "set_card_fields",
    "set_policy",
    "trace_dataset",
    "trace_request",
    "ChangeRule",
    "FairnessRule",
    "GateChecker",
    "GateOutcome",
    "GateReport",
    "GateRule",
    "PromotionGate",
    "ThresholdRule",
    "check_gates",
    "parse_rule",
    "parse_rules",
    "ROLES",
    "ROLE_PERMISSIONS",
    "Identity",
    "IssuedToken",
    "NotAuthenticated",
    "TokenRecord",
    "UserRecord",
    "authenticate",
    "authorize",
    "create_token",
    "create_user",
    "disable_user",
    "get_user",
    "grant",
    "list_tokens",
    "list_users",
    "local_identity",
    "revoke_role",
    "revoke_token",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, also=("ModelCard", "model_card", "set_card_fields"))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from loopml.governance.approvals import (
        ApprovalPolicyRecord,
        ApprovalRequestRecord,
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
    from loopml.governance.gates import (
        ChangeRule,
        FairnessRule,
        GateChecker,
        GateOutcome,
        GateReport,
        GateRule,
        PromotionGate,
        ThresholdRule,
        check_gates,
        parse_rule,
        parse_rules,
    )
    from loopml.governance.identity import (
        ROLE_PERMISSIONS,
        ROLES,
        Identity,
        IssuedToken,
        NotAuthenticated,
        TokenRecord,
        UserRecord,
        authenticate,
        authorize,
        create_token,
        create_user,
        disable_user,
        get_user,
        grant,
        list_tokens,
        list_users,
        local_identity,
        revoke_role,
        revoke_token,
    )
    from loopml.governance.trace import TraceResult, trace_dataset, trace_request
