"""Who may run which CLI command, and the check when the CLI targets a server.

Embedded (no ``LOOPML_SERVER_URL``): the CLI works on the workspace it can
open, as the OS user (or ``LOOPML_ACTOR``), trusted with everything, exactly
as the server's embedded single-user mode: whoever can open the store is
trusted with it.

Remote (``LOOPML_SERVER_URL`` + ``LOOPML_TOKEN``): before a command does
anything, the server says who the token belongs to and what it may do in the
server's project (``GET /whoami``), and the command's action from
:data:`COMMAND_ACTIONS` (the same ``noun.verb`` actions the REST routes
declare) is checked with :func:`loopml.governance.identity.authorize`. The
command then acts as that user over HTTP (the server checks again): every
verb of ``data``, ``runs``, ``models`` (``export`` converts on the server and downloads
the file, checked against its sha256), ``deploy``, ``rollout``,
``monitor``, ``predictions``, ``alerts``, ``triggers``, ``approvals``,
``lineage``, ``trace``, ``audit``, ``privacy``, ``users`` and ``tokens`` (issuing
one is the server's ``token.admin``; anyone lists and revokes their own). Files a verb
reads (a dataset, labels, a contract, a monitor spec, a recipe) are read here
and sent. Compute goes to the server too: ``run`` submits the recipe to the
server's scheduler (a local data file is uploaded as a dataset version first)
and waits for its result, ``score`` uploads the file and downloads the scored
output, and ``triggers fire --run`` waits for the scheduler's run. Only
``run --here`` and ``score --here`` (or ``score --executor ray``) compute on
this machine: they need the shared store (``LOOPML_DB_URL``,
``LOOPML_ARTIFACTS_URL``) and act on it with the token's user as the actor,
never a self-declared ``LOOPML_ACTOR``. ``data ingest --query`` is refused: it
reads a database from this machine, which a server cannot.

Commands whose action is ``None`` start the platform's own processes on the
host that holds the store (``server``, ``up``, ``scheduler``, ``serve``,
``stream``) or create a local workspace (``init``, ``quickstart``): there is no
caller to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.kernel.config import get_settings
from loopml.kernel.exceptions import ConfigError

if TYPE_CHECKING:
    from loopml.server.client import RemoteClient

__all__ = ["COMMAND_ACTIONS", "caller", "check", "command_path", "remote"]

#: The action a command needs, from its parameters and the caller's ``/whoami``.
ActionFor = Callable[[Mapping[str, Any], Mapping[str, Any]], str]


def _card(params: Mapping[str, Any], _me: Mapping[str, Any]) -> str:
    return "model.register" if params.get("set_") else "model.read"


def _alias(params: Mapping[str, Any], _me: Mapping[str, Any]) -> str:
    # Lazy: importing loopml.governance loads its whole package (gates → evaluate → pandas),
    # which no embedded command should pay for just to start.
    from loopml.governance._roles import alias_action

    return alias_action(str(params.get("alias_name", "")))


def _own_tokens(params: Mapping[str, Any], me: Mapping[str, Any]) -> str:
    return "token.self" if params.get("user") == me.get("name") else "token.admin"


def _contract(params: Mapping[str, Any], _me: Mapping[str, Any]) -> str:
    return "dataset.write" if params.get("edit") else "dataset.read"


#: Every CLI command (its path under ``loopml``) → the action it needs; ``None``: a host process.
COMMAND_ACTIONS: dict[str, str | ActionFor | None] = {
    "init": None,
    "quickstart": None,
    "server": None,
    "up": None,
    "scheduler": None,
    "serve": None,
    "stream": None,
    "run": "run.write",
    "score": "run.write",
    "deploy": "deployment.write",
    "lineage": "lineage.read",
    "trace": "lineage.read",
    "data ingest": "dataset.write",
    "data list": "dataset.read",
    "data versions": "dataset.read",
    "data show": "dataset.read",
    "data validate": "dataset.read",
    "data contract": _contract,
    "data profile": "dataset.read",
    "runs list": "run.read",
    "runs show": "run.read",
    "runs compare": "run.read",
    "models list": "model.read",
    "models show": "model.read",
    "models versions": "model.read",
    "models alias": _alias,
    "models history": "model.read",
    "models export": "model.read",
    "models card": _card,
    "audit log": "audit.read",
    "audit verify": "audit.read",
    "audit export": "audit.read",
    "predictions query": "deployment.read",
    "predictions count": "deployment.read",
    "predictions feedback": "monitor.write",
    "predictions compact": "deployment.write",
    "monitor define": "monitor.write",
    "monitor run": "monitor.run",
    "monitor list": "monitor.read",
    "monitor report": "monitor.read",
    "alerts list": "alert.read",
    "alerts ack": "alert.ack",
    "triggers list": "trigger.read",
    "triggers add": "trigger.write",
    "triggers fire": "trigger.fire",
    "triggers requests": "trigger.read",
    "triggers enable": "trigger.write",
    "triggers disable": "trigger.write",
    "rollout status": "deployment.read",
    "rollout promote": "rollout.write",
    "rollout rollback": "rollout.write",
    "rollout pause": "rollout.write",
    "rollout resume": "rollout.write",
    "rollout history": "deployment.read",
    "rollout analyze": "rollout.write",
    "rollout who": "deployment.read",
    "users add": "user.admin",
    "users list": "user.admin",
    "users show": "user.admin",
    "users grant": "user.admin",
    "users revoke": "user.admin",
    "users disable": "user.admin",
    "tokens create": "token.admin",
    "tokens list": _own_tokens,
    # Whose token an id is, only the server knows: it refuses another user's without token.admin.
    "tokens revoke": "token.self",
    "approvals request": "model.register",
    "approvals approve": "approval.decide",
    "approvals reject": "approval.decide",
    "approvals override": "approval.override",
    "approvals list": "model.read",
    "approvals policy set": "approval.policy",
    "approvals policy show": "model.read",
    "privacy erase": "privacy.admin",
    "privacy retention set": "privacy.admin",
    "privacy retention show": "deployment.read",
    "privacy retention apply": "privacy.admin",
}


def _context() -> Any:
    """The running command's click context (Typer may vendor its own click)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # a Typer that uses the click package
        from click import get_current_context
    return get_current_context(silent=True)


def command_path() -> str:
    """The running command's path under ``loopml`` (``"models alias"``); ``""`` outside a command."""
    ctx = _context()
    if ctx is None:
        return ""
    return " ".join(ctx.command_path.split()[1:])


def remote() -> RemoteClient | None:
    """A client for ``LOOPML_SERVER_URL`` (with ``LOOPML_TOKEN``), or ``None`` in embedded mode."""
    if not get_settings().server_url:
        return None
    from loopml.server.client import RemoteClient

    return RemoteClient.from_settings()


#: The check of the running command: its click context (held, so never confused with a later one) and result.
_checked: dict[str, Any] = {}


def check() -> str | None:
    """In remote mode: check the running command's action for the token's user; return the user's name.

    ``None`` in embedded mode, and for host processes (their action is ``None``).
    Called by ``handle_errors`` before the command runs, so a refusal comes
    before any work; the result is kept for the rest of the command.

    Raises:
        NotAuthenticated: the server refuses the token.
        PermissionDenied: the user's roles in the server's project do not hold the action.
        ConfigError: the command declares no action (a programming error).
        StoreError: the server cannot be reached.
    """
    if not get_settings().server_url:
        return None
    ctx = _context()
    if ctx is not None and _checked.get("ctx") is ctx:
        return _checked["name"]  # type: ignore[no-any-return]
    path = command_path()
    if path not in COMMAND_ACTIONS:
        raise ConfigError(f"command 'loopml {path}' declares no permission in loopml.cli._access.COMMAND_ACTIONS, "
                          "so it cannot run against a server (LOOPML_SERVER_URL is set)")
    needed = COMMAND_ACTIONS[path]
    name: str | None = None
    if needed is not None:
        from loopml.governance.identity import Identity, authorize

        client = remote()
        assert client is not None
        with client:
            me = client.whoami()
        params = dict(ctx.params) if ctx is not None else {}
        action = needed if isinstance(needed, str) else needed(params, me)
        identity = Identity(name=me["name"], roles={p: frozenset(r) for p, r in me.get("roles", {}).items()},
                            token_id=me.get("token_id"), local=bool(me.get("local")))
        target = {"alias": params["alias_name"]} if "alias_name" in params else {}
        authorize(identity, action, me.get("project", "default"), target=target)
        name = str(me["name"])
    _checked.clear()
    _checked.update(ctx=ctx, name=name)
    return name


def caller() -> str | None:
    """The actor for a command about to open the store: the token's user in remote mode (checked), else ``None``.

    Raises:
        ConfigError: remote mode, and no shared store is configured (the command computes on this machine).
    """
    name = check()
    if name is None:
        return None
    settings = get_settings()
    if not settings.db_url and not settings.workspace_dir.exists():
        raise ConfigError(
            f"'loopml {command_path()}' computes on this machine here: besides LOOPML_SERVER_URL it needs the "
            "shared store (LOOPML_DB_URL and LOOPML_ARTIFACTS_URL) to act on as the token's user; without --here "
            "(and a Ray executor) the server does the work"
        )
    return name
