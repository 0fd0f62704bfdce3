"""Cache policies: composable values that turn a step invocation into a cache key.

Modelled on prefect's ``cache_policies``: each policy contributes named
components (the step's input digests, its source hash, its parameters, the
environment); ``+`` combines them; the key is sha256 over the canonical JSON
of the step's name and outputs plus every component. ``NONE`` contributes
nothing and is the identity of ``+``; a policy with no components yields no
key, so the step is never cached.

    INPUTS + SOURCE + PARAMS           the default (``DEFAULT``)
    INPUTS + SOURCE + PARAMS + ENV     also invalidate on a Python upgrade
    INPUTS + Env(packages=("scikit-learn",))   ... or a package upgrade
    NONE                               always run
"""

from __future__ import annotations

import hashlib
import json
import platform
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.pipeline._step import Step

__all__ = [
    "DEFAULT",
    "ENV",
    "INPUTS",
    "NONE",
    "PARAMS",
    "SOURCE",
    "CacheContext",
    "CachePolicy",
    "CompoundPolicy",
    "Env",
    "Inputs",
    "NoCache",
    "Params",
    "Source",
    "canonical_json",
]


@dataclass(frozen=True)
class CacheContext:
    """What a policy may look at: the step, its input digests and its parameters."""

    step: Step
    input_digests: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


class CachePolicy(ABC):
    """A rule for a step's cache key; combine rules with ``+``."""

    def compute_key(self, ctx: CacheContext) -> str | None:
        """The sha256 cache key for ``ctx``, or ``None`` when the policy caches nothing."""
        parts = self._components(ctx)
        if not parts:
            return None
        payload = {"step": ctx.step.name, "outputs": list(ctx.step.outputs), **parts}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()

    @abstractmethod
    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        """Named, JSON-able parts of the key this policy contributes."""

    @property
    def parts(self) -> tuple[CachePolicy, ...]:
        """The simple policies this one is made of."""
        return (self,)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        merged: list[CachePolicy] = []
        for part in (*self.parts, *other.parts):
            if not isinstance(part, NoCache) and part not in merged:
                merged.append(part)
        if not merged:
            return NONE
        if len(merged) == 1:
            return merged[0]
        return CompoundPolicy(tuple(merged))


@dataclass(frozen=True)
class NoCache(CachePolicy):
    """Contributes nothing: on its own, the step always runs."""

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        return {}

    @property
    def parts(self) -> tuple[CachePolicy, ...]:
        return ()

    def __repr__(self) -> str:
        return "NONE"


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The digests of the step's inputs (the artifacts other steps produced)."""

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        return {"inputs": dict(sorted(ctx.input_digests.items()))}

    def __repr__(self) -> str:
        return "INPUTS"


@dataclass(frozen=True)
class Source(CachePolicy):
    """The hash of the step function's normalised source."""

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        return {"source": ctx.step.source_hash}

    def __repr__(self) -> str:
        return "SOURCE"


@dataclass(frozen=True)
class Params(CachePolicy):
    """The run-time parameters the step takes (defaults filled in)."""

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        return {"params": dict(sorted(ctx.params.items()))}

    def __repr__(self) -> str:
        return "PARAMS"


@dataclass(frozen=True)
class Env(CachePolicy):
    """The Python version, plus the installed versions of ``packages`` (distribution names)."""

    packages: tuple[str, ...] = ()

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        env: dict[str, Any] = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
        }
        if self.packages:
            env["packages"] = {name: _version(name) for name in sorted(self.packages)}
        return {f"env:{','.join(sorted(self.packages))}": env}

    def __repr__(self) -> str:
        return f"Env(packages={self.packages!r})" if self.packages else "ENV"


@dataclass(frozen=True)
class CompoundPolicy(CachePolicy):
    """Several policies at once; built by ``+``, not usually by hand."""

    policies: tuple[CachePolicy, ...]

    def _components(self, ctx: CacheContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for policy in self.policies:
            out.update(policy._components(ctx))
        return out

    @property
    def parts(self) -> tuple[CachePolicy, ...]:
        return self.policies

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies)


@lru_cache(maxsize=256)
def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not-installed"


def _jsonable(value: Any) -> Any:
    # Only for values json cannot encode: numpy scalars, sets, paths, dataclasses.
    if isinstance(value, (set, frozenset)):
        return sorted(canonical_json(v) for v in value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return repr(value)


def canonical_json(value: Any) -> str:
    """Sorted-key, compact JSON; values json cannot encode fall back to ``repr``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)


NONE: CachePolicy = NoCache()
INPUTS: CachePolicy = Inputs()
SOURCE: CachePolicy = Source()
PARAMS: CachePolicy = Params()
ENV: CachePolicy = Env()
#: What ``@step`` uses unless told otherwise.
DEFAULT: CachePolicy = INPUTS + SOURCE + PARAMS
