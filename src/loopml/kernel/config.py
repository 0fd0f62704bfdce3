"""Typed settings: ``loopml.toml`` in the workspace root, overridden by ``LOOPML_*``.

Library code reads settings only through :func:`get_settings`; nothing else
in loopml touches ``os.environ``. One class per section, one env prefix:
``LOOPML_DB_URL``, ``LOOPML_ARTIFACTS_URL``, ``LOOPML_SERVE__PORT`` ...
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from loopml.kernel.exceptions import ConfigError

__all__ = [
    "WORKSPACE_DIRNAME",
    "ServeSettings",
    "Settings",
    "find_workspace_root",
    "get_settings",
    "reset_settings",
]

WORKSPACE_DIRNAME = ".loopml"
CONFIG_FILENAME = "loopml.toml"


class ServeSettings(BaseModel):
    """Online serving defaults (per endpoint overrides live on the endpoint)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Rows per model call. Concurrent 100-row requests merge up to 8 per call at 1024 (the per-call cost of
    # a tree ensemble is ~0.6 ms): 25-35% less CPU per request than at 256 (bench/serving/RESULTS.md).
    max_batch_size: int = 1024
    max_batch_wait_ms: float = 2.0
    max_queue: int = 256
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    log_flush_interval_s: float = 1.0
    shadow_sample_rate: float = 1.0
    # The shadow lane scores the copies that arrive within this window (or until shadow_max_rows wait) in one call
    # per shadow version: the per-call cost is paid once per window, not once per batch (bench/serving/routing).
    shadow_window_ms: float = 100.0
    shadow_max_rows: int = 4096
    # Score shadows in a worker process, off the server's GIL: a shadow of every request then costs the server
    # only the packing of each window (bench/serving/routing/RESULTS.md, seventh pass). False: the server's thread.
    shadow_process: bool = True


class Settings(BaseSettings):
    """All loopml settings. Paths default to the workspace under ``root``."""

    model_config = SettingsConfigDict(
        env_prefix="LOOPML_", env_nested_delimiter="__", extra="ignore"
    )

    root: Path = Field(default_factory=Path.cwd)
    db_url: str | None = None
    artifacts_url: str | None = None
    predictions_url: str | None = None
    server_url: str | None = None
    token: str | None = None
    actor: str | None = None
    executor: str = "inprocess"
    require_services: bool = False
    debug: bool = False
    serve: ServeSettings = Field(default_factory=ServeSettings)

    @property
    def workspace_dir(self) -> Path:
        return self.root / WORKSPACE_DIRNAME

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.workspace_dir / 'loopml.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.workspace_dir / "artifacts")

    @property
    def resolved_predictions_url(self) -> str:
        return self.predictions_url or str(self.workspace_dir / "predictions")

    @property
    def resolved_actor(self) -> str:
        if self.actor:
            return self.actor
        # The OS user is the default actor in single-user embedded mode.
        try:
            return os.getlogin()
        except OSError:
            import getpass

            return getpass.getuser()


def find_workspace_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding ``.loopml/`` or ``loopml.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_DIRNAME).is_dir() or (folder / CONFIG_FILENAME).is_file():
            return folder
    return None


def _read_toml(root: Path) -> dict[str, Any]:
    path = root / CONFIG_FILENAME
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return data.get("loopml", data)


def load_settings(root: Path | None = None, **overrides: Any) -> Settings:
    """Settings for the workspace at ``root`` (found upward from cwd by default).

    Precedence: explicit overrides > ``LOOPML_*`` env > ``loopml.toml`` > defaults.
    """
    env_root = os.environ.get("LOOPML_ROOT")
    base = Path(root or env_root or find_workspace_root() or Path.cwd()).resolve()
    # Sections merge key by key: LOOPML_SERVE__HOST overrides serve.host and keeps
    # the file's serve.port. The env source yields only what the env actually set.
    values = _merge(_read_toml(base), EnvSettingsSource(Settings)())
    values = _merge(values, overrides)
    values["root"] = base
    try:
        return Settings(**values)
    except PydanticValidationError as exc:  # → our tree, one line naming each field
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings (loopml.toml or LOOPML_* env): {problems}") from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call :func:`reset_settings` after changing env)."""
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings, e.g. after ``chdir`` or an env change in tests."""
    get_settings.cache_clear()
