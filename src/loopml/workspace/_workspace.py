"""Workspace: what every service function receives.

A workspace is a metadata store URL plus an artifact store URL (DESIGN.md).
The embedded default lives in ``./.loopml/`` (SQLite in WAL mode and a local
folder); a team points ``LOOPML_DB_URL`` at PostgreSQL and
``LOOPML_ARTIFACTS_URL`` at an object store. Service functions take a
``Workspace`` first, so the CLI, the REST server and notebooks share them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from loopml.artifacts import ArtifactStore
from loopml.kernel.config import CONFIG_FILENAME, Settings, load_settings
from loopml.kernel.exceptions import ConfigError
from loopml.metadata.store import MetadataStore

__all__ = ["Workspace", "init_workspace", "open_workspace"]

_OPEN: dict[tuple[str, str], MetadataStore] = {}
_OPEN_LOCK = threading.Lock()

_TOML_TEMPLATE = """\
# loopml workspace settings; LOOPML_* environment variables override these.
[loopml]
# db_url = "postgresql://user@host:5432/loopml"    # default: .loopml/loopml.db (SQLite)
# artifacts_url = "s3://bucket/loopml"             # default: .loopml/artifacts
"""


@dataclass
class Workspace:
    """Settings, the metadata store and the artifact store, plus who is acting."""

    settings: Settings
    store: MetadataStore
    actor: str

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.settings.resolved_artifacts_url)

    @property
    def root(self) -> Path:
        return self.settings.root

    @property
    def dir(self) -> Path:
        """The local ``.loopml`` folder (scratch space, reports, spill files)."""
        path = self.settings.workspace_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Crosses to another process (serving's shadow worker) as its settings and actor; the store reopens there."""
        return _reopen, (self.settings, self.actor)

    def as_actor(self, actor: str) -> Workspace:
        """The same stores, acting as someone else (the server does this per request)."""
        return Workspace(settings=self.settings, store=self.store, actor=actor)

    def describe(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "db_url": _hide_password(self.store.url),
            "artifacts_url": self.settings.resolved_artifacts_url,
            "actor": self.actor,
        }


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as is, minus nothing secret
        return url.split("@")[-1]


def _store_for(url: str, root: Path) -> MetadataStore:
    key = (url, str(root))
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is None:
            store = MetadataStore(url)
            _OPEN[key] = store
        return store


def _reopen(settings: Settings, actor: str) -> Workspace:
    return Workspace(settings=settings, store=_store_for(settings.resolved_db_url, settings.root), actor=actor)


def open_workspace(root: str | Path | None = None, *, actor: str | None = None, **overrides: Any) -> Workspace:
    """Open the workspace at ``root`` (found upward from cwd), migrating its store."""
    settings = load_settings(Path(root) if root else None, **overrides)
    if not settings.db_url and not settings.workspace_dir.exists():
        raise ConfigError(
            f"no loopml workspace at {settings.root}: run 'loopml init' there, "
            "or set LOOPML_DB_URL and LOOPML_ARTIFACTS_URL"
        )
    store = _store_for(settings.resolved_db_url, settings.root)
    return Workspace(settings=settings, store=store, actor=actor or settings.resolved_actor)


def init_workspace(root: str | Path | None = None, *, actor: str | None = None, **overrides: Any) -> Workspace:
    """Create ``.loopml/`` and ``loopml.toml`` at ``root`` (idempotent) and open it."""
    base = Path(root or Path.cwd()).resolve()
    (base / ".loopml").mkdir(parents=True, exist_ok=True)
    toml = base / CONFIG_FILENAME
    if not toml.exists():
        toml.write_text(_TOML_TEMPLATE)
    ws = open_workspace(base, actor=actor, **overrides)
    ws.artifacts  # noqa: B018 - creates the artifact folder now, not on first write
    return ws
