"""Roles and what they may do: one table, read by the server, the CLI and tests.

Roles form a ladder; each holds every permission of the roles below it::

    viewer          read everything (datasets, runs, models, deployments,
                    monitors, reports, alerts, triggers, lineage, audit)
    data_scientist  + ingest datasets, write runs, register candidate models
    ml_engineer     + deploy, drive rollouts, run monitors, ack alerts,
                    fire and edit triggers, move aliases (except protected
                    ones such as ``champion``, which need an approval)
    approver        + approve (decide approvals; move protected aliases)
    admin           + users, roles and tokens, approval policies and
                    overrides, retention and erasure: everything

An action is ``noun.verb`` (``model.alias``); :data:`ACTIONS` lists them all
so a route cannot declare an action nobody could ever hold.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "ACTIONS",
    "ALL_PROJECTS",
    "PROTECTED_ALIASES",
    "ROLES",
    "ROLE_PERMISSIONS",
    "alias_action",
    "permissions_of",
]

#: Project wildcard: a binding to ``*`` applies in every project.
ALL_PROJECTS = "*"

#: Aliases whose moves need an approval (an ``approver`` or an approval record).
PROTECTED_ALIASES = frozenset({"champion"})

_READ = frozenset({
    "dataset.read", "run.read", "model.read", "deployment.read", "monitor.read",
    "alert.read", "trigger.read", "lineage.read", "audit.read", "token.self",
})
_DATA_SCIENTIST = frozenset({"dataset.write", "run.write", "model.register"})
_ML_ENGINEER = frozenset({
    "model.alias", "deployment.write", "rollout.write", "monitor.write", "monitor.run",
    "alert.ack", "trigger.write", "trigger.fire",
})
_APPROVER = frozenset({"approval.decide", "model.alias.protected"})
_ADMIN = frozenset({"user.admin", "token.admin", "approval.policy", "approval.override", "privacy.admin"})

#: Roles from least to most privileged.
ROLES: tuple[str, ...] = ("viewer", "data_scientist", "ml_engineer", "approver", "admin")

ROLE_PERMISSIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    "viewer": _READ,
    "data_scientist": _READ | _DATA_SCIENTIST,
    "ml_engineer": _READ | _DATA_SCIENTIST | _ML_ENGINEER,
    "approver": _READ | _DATA_SCIENTIST | _ML_ENGINEER | _APPROVER,
    "admin": _READ | _DATA_SCIENTIST | _ML_ENGINEER | _APPROVER | _ADMIN,
})

#: Every action some role holds.
ACTIONS: frozenset[str] = ROLE_PERMISSIONS["admin"]


def permissions_of(roles: frozenset[str] | set[str]) -> frozenset[str]:
    """The union of the permissions of ``roles`` (unknown role names hold nothing)."""
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return out


def alias_action(alias: str) -> str:
    """The action moving ``alias`` needs: protected aliases need an approval."""
    return "model.alias.protected" if alias in PROTECTED_ALIASES else "model.alias"
