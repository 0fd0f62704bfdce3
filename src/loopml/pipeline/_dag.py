"""``Pipeline``: steps wired by the names of their inputs and outputs, checked at build time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from loopml.kernel.exceptions import PipelineError, ValidationError
from loopml.kernel.types import check_name
from loopml.pipeline._step import REQUIRED, Step

__all__ = ["Pipeline"]


def _quoted(names: Iterable[str]) -> str:
    items = [f"'{n}'" for n in names]
    return ", ".join(items) if items else "(none)"


class Pipeline:
    """A DAG of steps. Built once, immutable, validated on construction.

    Args:
        steps: the steps, in any order; edges come from input/output names.
        name: the pipeline's name (runs are named after it).

    Raises:
        PipelineError: no steps, a non-step item, two steps with one name, an
            output with two producers, an input nothing produces, or a cycle.
    """

    def __init__(self, steps: Iterable[Step], *, name: str = "pipeline") -> None:
        try:
            self.name = check_name(name, "pipeline name")
        except ValidationError as exc:
            raise PipelineError(str(exc)) from exc
        items = list(steps)
        if not items:
            raise PipelineError(f"pipeline '{self.name}' has no steps")
        by_name: dict[str, Step] = {}
        producer: dict[str, str] = {}
        for i, item in enumerate(items):
            if not isinstance(item, Step):
                what = "a function" if callable(item) else f"a {type(item).__name__}"
                raise PipelineError(
                    f"pipeline '{self.name}': item {i} ({getattr(item, '__name__', repr(item))}) is "
                    f"{what}, not a step; decorate it with @step"
                )
            if item.name in by_name:
                raise PipelineError(f"pipeline '{self.name}' has two steps named '{item.name}'")
            by_name[item.name] = item
            for out in item.outputs:
                if out in producer:
                    raise PipelineError(
                        f"output '{out}' is produced by both step '{producer[out]}' and step "
                        f"'{item.name}'; each output must have exactly one producer"
                    )
                producer[out] = item.name

        inputs: dict[str, tuple[str, ...]] = {}
        params: dict[str, tuple[str, ...]] = {}
        for s in items:
            ins: list[str] = []
            ps: list[str] = []
            for pname in s.parameters:
                if pname in producer:
                    ins.append(pname)
                elif pname in s.keyword_parameters:
                    ps.append(pname)
                else:
                    raise PipelineError(
                        f"step '{s.name}' needs input '{pname}', which no step produces; "
                        f"known outputs: {_quoted(producer)}"
                        " (make it keyword-only or give it a default to pass it as a param)"
                    )
            inputs[s.name] = tuple(ins)
            params[s.name] = tuple(ps)

        self._steps = by_name
        self._producer = producer
        self._inputs = inputs
        self._params = params
        self._upstream = {
            s: tuple(dict.fromkeys(producer[i] for i in ins)) for s, ins in inputs.items()
        }
        self._layers = self._toposort([s.name for s in items])
        self._order = tuple(by_name[n] for layer in self._layers for n in layer)

    # -- building ---------------------------------------------------------------

    def _toposort(self, declared: list[str]) -> tuple[tuple[str, ...], ...]:
        """Kahn's algorithm by layers; declaration order breaks ties (stable)."""
        remaining = {n: set(self._upstream[n]) for n in declared}
        layers: list[tuple[str, ...]] = []
        done: set[str] = set()
        while remaining:
            ready = tuple(n for n in declared if n in remaining and remaining[n] <= done)
            if not ready:
                raise PipelineError(f"pipeline '{self.name}' has a cycle: {self._find_cycle(remaining)}")
            layers.append(ready)
            done.update(ready)
            for n in ready:
                del remaining[n]
        return tuple(layers)

    def _find_cycle(self, remaining: Mapping[str, set[str]]) -> str:
        # Walk upstream from any blocked step until a step repeats; that loop is a cycle.
        node = next(iter(remaining))
        path: list[str] = []
        while node not in path:
            path.append(node)
            node = next(u for u in self._upstream[node] if u in remaining)
        loop = path[path.index(node):]
        loop.reverse()  # upstream walk -> data-flow order
        return " -> ".join([*loop, loop[0]])

    # -- reading ----------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps=[{', '.join(s.name for s in self._order)}])"

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Step]:
        return iter(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    @property
    def steps(self) -> tuple[Step, ...]:
        """All steps in topological order."""
        return self._order

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        try:
            return self._steps[name]
        except KeyError:
            raise PipelineError(
                f"pipeline '{self.name}' has no step '{name}'; steps: {_quoted(self._steps)}"
            ) from None

    def layers(self) -> tuple[tuple[Step, ...], ...]:
        """Steps grouped so that the steps of one layer depend only on earlier layers."""
        return tuple(tuple(self._steps[n] for n in layer) for layer in self._layers)

    def inputs(self, step_name: str) -> tuple[str, ...]:
        """The data inputs of a step (outputs of other steps)."""
        self.step(step_name)
        return self._inputs[step_name]

    def params_of(self, step_name: str) -> tuple[str, ...]:
        """The run-time parameters a step takes."""
        self.step(step_name)
        return self._params[step_name]

    def upstream(self, step_name: str) -> tuple[str, ...]:
        """The steps whose outputs ``step_name`` consumes."""
        self.step(step_name)
        return self._upstream[step_name]

    def producer(self, output: str) -> str:
        """The step that produces ``output``."""
        try:
            return self._producer[output]
        except KeyError:
            raise PipelineError(
                f"pipeline '{self.name}' has no output '{output}'; outputs: {_quoted(self._producer)}"
            ) from None

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output name, in step order."""
        return tuple(o for s in self._order for o in s.outputs)

    @property
    def final_outputs(self) -> tuple[str, ...]:
        """Outputs no step consumes: what the pipeline hands back."""
        consumed = {i for ins in self._inputs.values() for i in ins}
        return tuple(o for o in self.outputs if o not in consumed)

    @property
    def params(self) -> dict[str, Any]:
        """Every run-time parameter and its default (``REQUIRED`` where there is none).

        A parameter shared by several steps with different defaults has no single
        default and is listed as ``REQUIRED``.
        """
        out: dict[str, Any] = {}
        for s in self._order:
            for p in self._params[s.name]:
                default = s.parameters[p]
                if p in out and not _same(out[p], default):
                    out[p] = REQUIRED
                else:
                    out.setdefault(p, default)
        return out

    def resolve_params(self, params: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Each step's parameter values: ``params`` over the defaults.

        Raises:
            PipelineError: an unknown parameter, or a required one left unset.
        """
        given = dict(params or {})
        known = self.params
        for key in given:
            if key not in known:
                if key in self._producer:
                    raise PipelineError(
                        f"'{key}' is an output of step '{self._producer[key]}', not a parameter of "
                        f"pipeline '{self.name}'; parameters: {_quoted(known)}"
                    )
                raise PipelineError(
                    f"unknown parameter '{key}' for pipeline '{self.name}'; parameters: {_quoted(known)}"
                )
        out: dict[str, dict[str, Any]] = {}
        for s in self._order:
            values: dict[str, Any] = {}
            for p in self._params[s.name]:
                if p in given:
                    values[p] = given[p]
                elif s.parameters[p] is REQUIRED:
                    raise PipelineError(
                        f"step '{s.name}' needs parameter '{p}', which no step produces and "
                        f"params does not set; pass params={{'{p}': ...}}"
                    )
                else:
                    values[p] = s.parameters[p]
            out[s.name] = values
        return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:  # e.g. arrays: ambiguous truth value
        return False
