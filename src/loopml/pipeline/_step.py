"""``@step``: a plain Python function with named inputs and named outputs.

A step's inputs are its parameters. When a pipeline is built, a parameter that
some step produces becomes a data input; any other parameter is a run-time
*param*, set through ``run_pipeline(..., params=...)`` or left at its default.
A step has one output named after the function, unless ``outputs=`` names
several (then it returns a tuple of that length, or a dict with those keys) or
none (``outputs=()``, a sink that returns ``None``).
"""

from __future__ import annotations

import functools
import inspect
import keyword
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from loopml.kernel.exceptions import PipelineError
from loopml.pipeline._cache import DEFAULT, NONE, CachePolicy
from loopml.pipeline._source import source_hash

__all__ = ["CONTEXT_PARAMETER", "REQUIRED", "Step", "step"]

#: A step parameter with this name receives the runner's ``StepContext``
#: (the workspace, run ids, and a way to log params, metrics, lineage and trials).
CONTEXT_PARAMETER = "context"


class _Required:
    """Marker for a parameter without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True, eq=False)
class Step:
    """A function plus its declared outputs, cache policy and resources.

    Calling a step calls the function, so steps stay unit-testable.
    """

    func: Callable[..., Any]
    name: str
    outputs: tuple[str, ...]
    cache: CachePolicy = DEFAULT
    resources: Mapping[str, Any] = field(default_factory=dict)
    #: parameter name -> default value (``REQUIRED`` when it has none)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: parameters that can only be params (keyword-only or with a default)
    keyword_parameters: frozenset[str] = frozenset()
    #: the function takes ``context`` (a ``StepContext`` the runner injects)
    wants_context: bool = False

    def __post_init__(self) -> None:
        # Look like the function (name, module, docs) so tools and ``help()`` work.
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(self.func, attr):
                object.__setattr__(self, attr, getattr(self.func, attr))
        object.__setattr__(self, "__wrapped__", self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name} ({', '.join(self.parameters)}) -> ({', '.join(self.outputs)})>"

    @functools.cached_property
    def source_hash(self) -> str:
        """sha256 of the function's normalised source (see ``_source``)."""
        return source_hash(self.func)

    @property
    def reference(self) -> str:
        """``module:qualname``, where the step can be imported from."""
        return f"{self.func.__module__}:{self.func.__qualname__}"

    def split_outputs(self, value: Any) -> dict[str, Any]:
        """Map a return value onto the declared outputs.

        Raises:
            PipelineError: the value does not match the declared outputs.
        """
        n = len(self.outputs)
        if n == 0:
            if value is not None:
                raise PipelineError(
                    f"step '{self.name}' declares no outputs but returned a {type(value).__name__}; "
                    "return None or declare outputs=(...)"
                )
            return {}
        if n == 1:
            return {self.outputs[0]: value}
        if isinstance(value, Mapping):
            keys = set(value)
            if keys != set(self.outputs):
                raise PipelineError(
                    f"step '{self.name}' declares outputs {_names(self.outputs)} but returned a dict "
                    f"with keys {_names(sorted(map(str, keys)))}"
                )
            return {name: value[name] for name in self.outputs}
        if isinstance(value, (tuple, list)):
            if len(value) != n:
                raise PipelineError(
                    f"step '{self.name}' declares {n} outputs ({_names(self.outputs)}) "
                    f"but returned {len(value)} values"
                )
            return dict(zip(self.outputs, value, strict=True))
        raise PipelineError(
            f"step '{self.name}' declares outputs {_names(self.outputs)} but returned a "
            f"{type(value).__name__}; return a tuple of {n} values or a dict with those keys"
        )


def _names(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _check_identifier(value: Any, what: str, step_name: str) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise PipelineError(f"step '{step_name}': {what} {value!r} is not a valid Python identifier")
    return value


def _make_step(
    func: Callable[..., Any],
    *,
    name: str | None,
    outputs: str | tuple[str, ...] | list[str] | None,
    cache: CachePolicy | bool,
    resources: Mapping[str, Any] | None,
) -> Step:
    if isinstance(func, Step):
        func = func.func
    if not callable(func):
        raise PipelineError(f"@step decorates functions, not {type(func).__name__} objects")
    step_name = name or getattr(func, "__name__", None) or ""
    if step_name == "<lambda>":
        raise PipelineError("@step needs a named function or name=...; got a lambda")
    _check_identifier(step_name, "name", step_name or "?")

    if outputs is None:
        outs: tuple[str, ...] = (step_name,)
    elif isinstance(outputs, str):
        outs = (outputs,)
    else:
        outs = tuple(outputs)
    seen: set[str] = set()
    for out in outs:
        _check_identifier(out, "output", step_name)
        if out in seen:
            raise PipelineError(f"step '{step_name}' declares output '{out}' twice")
        seen.add(out)

    if cache is True:
        policy = DEFAULT
    elif cache is False:
        policy = NONE
    elif isinstance(cache, CachePolicy):
        policy = cache
    else:
        raise PipelineError(
            f"step '{step_name}': cache must be a cache policy (e.g. INPUTS + SOURCE + PARAMS), "
            f"True or False, not {cache!r}"
        )

    res = dict(resources or {})
    for key, value in res.items():
        if not isinstance(key, str) or not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise PipelineError(
                f"step '{step_name}': resource {key!r} must be a non-negative number, got {value!r}"
            )

    params: dict[str, Any] = {}
    keyword_only: set[str] = set()
    wants_context = False
    for p in inspect.signature(func).parameters.values():
        if p.name == CONTEXT_PARAMETER:
            wants_context = True  # injected by the runner, neither an input nor a param
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise PipelineError(
                f"step '{step_name}' takes {star}{p.name}; steps take named parameters only"
            )
        if p.kind is p.POSITIONAL_ONLY:
            raise PipelineError(
                f"step '{step_name}': parameter '{p.name}' is positional-only; steps are called by name"
            )
        params[p.name] = REQUIRED if p.default is p.empty else p.default
        if p.kind is p.KEYWORD_ONLY or p.default is not p.empty:
            keyword_only.add(p.name)

    return Step(
        func=func,
        name=step_name,
        outputs=outs,
        cache=policy,
        resources=res,
        parameters=params,
        keyword_parameters=frozenset(keyword_only),
        wants_context=wants_context,
    )


@overload
def step(func: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: str | tuple[str, ...] | list[str] | None = None,
    cache: CachePolicy | bool = DEFAULT,
    resources: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: str | tuple[str, ...] | list[str] | None = None,
    cache: CachePolicy | bool = DEFAULT,
    resources: Mapping[str, Any] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Declare a pipeline step: ``@step`` or ``@step(outputs=("train", "test"), cache=NONE)``.

    Args:
        name: the step's name (default: the function's name).
        outputs: names of the outputs (default: one output named after the step).
        cache: a cache policy (default ``INPUTS + SOURCE + PARAMS``); ``False`` = ``NONE``.
        resources: what one run of the step needs, e.g. ``{"cpus": 1, "gpus": 0}``;
            executors that schedule resources read it.

    Raises:
        PipelineError: bad names, duplicate outputs, ``*args``/``**kwargs``, a bad policy.
    """
    if func is not None:
        return _make_step(func, name=name, outputs=outputs, cache=cache, resources=resources)

    def decorate(f: Callable[..., Any]) -> Step:
        return _make_step(f, name=name, outputs=outputs, cache=cache, resources=resources)

    return decorate
