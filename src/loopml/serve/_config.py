"""Per-endpoint serving limits (defaults come from ``Settings.serve``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from loopml.kernel.exceptions import ValidationError

__all__ = ["ServeConfig"]


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Limits and batching of one endpoint.

    ``max_batch_size`` counts rows per model call (1 turns batching off);
    ``max_batch_wait_ms`` is how long a batch may wait for company, and only
    under concurrent load; ``max_queue`` counts requests waiting for the model
    (beyond it: 503 + ``Retry-After``); ``max_rows`` and ``max_body_bytes``
    bound one request (beyond them: 413). ``shadow_sample_rate`` is the
    fraction of requests a traffic policy's shadow versions also score;
    ``shadow_window_ms`` is how long the shadow lane collects copies after the
    first one before scoring them in one call per shadow version (0: at once),
    ``shadow_max_rows`` the rows that end a window early (and cap one call);
    ``shadow_process`` scores them in a worker process (``_shadow_worker.py``)
    rather than on a thread of the server, when the endpoint's versions and
    prediction log can be opened there.
    """

    max_batch_size: int = 32
    max_batch_wait_ms: float = 2.0
    max_queue: int = 256
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    poll_interval_s: float = 1.0
    retry_after_s: int = 1
    shadow_sample_rate: float = 1.0
    shadow_window_ms: float = 100.0
    shadow_max_rows: int = 4096
    shadow_process: bool = True

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "max_rows", "max_body_bytes", "shadow_max_rows"):
            if int(getattr(self, name)) < 1:
                raise ValidationError(f"serve setting {name} must be >= 1, got {getattr(self, name)!r}",
                                      field=name, rule="min")
        if not 0.0 <= self.shadow_sample_rate <= 1.0:
            raise ValidationError(f"serve setting shadow_sample_rate must be in [0, 1], got {self.shadow_sample_rate!r}",
                                  field="shadow_sample_rate", rule="range")
        if not self.shadow_window_ms >= 0:  # NaN fails too
            raise ValidationError(f"serve setting shadow_window_ms must be >= 0, got {self.shadow_window_ms!r}",
                                  field="shadow_window_ms", rule="min")
        if not isinstance(self.shadow_process, bool):
            raise ValidationError(f"serve setting shadow_process must be true or false, got {self.shadow_process!r}",
                                  field="shadow_process", rule="type")
        if self.max_batch_wait_ms < 0 or self.poll_interval_s <= 0:
            raise ValidationError("serve settings max_batch_wait_ms must be >= 0 and poll_interval_s > 0",
                                  field="max_batch_wait_ms", rule="min")

    @classmethod
    def coerce(cls, value: Any = None, **overrides: Any) -> ServeConfig:
        """From a ``ServeConfig``, ``ServeSettings`` (pydantic), a dict or ``None``."""
        names = {f.name for f in fields(cls)}
        if value is None:
            base = cls()
        elif isinstance(value, cls):
            base = value
        else:
            raw = value if isinstance(value, dict) else {n: getattr(value, n) for n in names if hasattr(value, n)}
            unknown = set(raw) - names - {"host", "port", "log_flush_interval_s"}
            if unknown:
                raise ValidationError(f"unknown serve settings {sorted(unknown)}; known: {sorted(names)}",
                                      field=sorted(unknown)[0], rule="unknown")
            base = cls(**{k: v for k, v in raw.items() if k in names})
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
