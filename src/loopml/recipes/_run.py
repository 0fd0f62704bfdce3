"""Run the continuous-training recipe: a spec becomes params of one fixed pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.kernel.exceptions import NotFoundError, SpecError
from loopml.pipeline import Pipeline
from loopml.recipes._steps import STEPS, file_digest
from loopml.recipes.spec import RecipeSpec, load_spec, parse_spec
from loopml.workspace import Workspace

__all__ = ["RecipeResult", "check_spec", "recipe_params", "recipe_pipeline", "run_recipe", "submit_recipe"]


@dataclass(frozen=True)
class RecipeResult:
    """What one recipe run did, for people (``summary``) and scripts (``to_dict``)."""

    run_id: str
    status: str
    steps: list[dict[str, Any]]
    dataset_version: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    gate_report: dict[str, Any] | None = None
    model_version: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dv = dict(self.dataset_version or {})
        return {
            "run_id": self.run_id, "status": self.status, "steps": self.steps, "dataset_version": dv,
            "evaluation": self.evaluation, "gate_report": self.gate_report,
            "model_version": self.model_version, "training": self.training, **self.extra,
        }


def recipe_pipeline(spec: RecipeSpec) -> Pipeline:
    return Pipeline(STEPS, name=spec.name)


def _champion(ws: Workspace, spec: RecipeSpec) -> str | None:
    from loopml.register import resolve

    alias = spec.registry.compare_with
    try:
        record = resolve(ws, f"{spec.registry.model}@{alias}")
    except NotFoundError:
        return None
    return f"{record.name}/{record.version}"


def _registered_version(ws: Workspace, spec: RecipeSpec) -> int | None:
    """With no source, the dataset version the run trains on: "newest" is fixed before the run, so the
    ingest step's cache key names the version (a newer one misses the cache)."""
    data = spec.data
    if data.source or data.sql_url:
        return data.version
    from loopml.ingest import get_dataset_version

    return get_dataset_version(ws, f"{data.dataset}@{data.version}" if data.version else data.dataset).version


def recipe_params(ws: Workspace, spec: RecipeSpec) -> dict[str, Any]:
    """The pipeline's params from the spec, plus what is resolved just before the run."""
    data = spec.data
    source_digest = None
    if data.source and "://" not in data.source and Path(data.source).is_file():
        source_digest = file_digest(data.source)
    version = _registered_version(ws, spec)
    search = spec.train.search.model_dump() if spec.train.search else None
    return {
        "dataset": data.dataset,
        "source": data.source,
        "sql_url": data.sql_url,
        "query": data.query,
        "source_digest": source_digest,
        "version": version,
        "target": data.target,
        "contract_file": data.contract,
        "time_column": data.time_column,
        "split_method": spec.split.method,
        "test_size": spec.split.test_size,
        "validation_size": spec.split.validation_size,
        "seed": spec.split.seed,
        "estimator": spec.train.estimator,
        "estimator_params": dict(spec.train.params),
        "features": data.features,
        "drop": [*data.drop, *([data.time_column] if data.time_column else [])],
        "preprocess": spec.train.preprocess,
        "search": search,
        "slices": list(spec.evaluate.slices),
        "positive_label": spec.evaluate.positive_label,
        "gates": list(spec.gates),
        "champion": _champion(ws, spec),
        "model_name": spec.registry.model,
        "alias_on_pass": spec.registry.alias_on_pass,
        "alias_on_fail": spec.registry.alias_on_fail,
        "register_failed": spec.registry.register_failed,
    }


def check_spec(spec: RecipeSpec) -> None:
    """Check, before any step runs, what needs no data: the gate rules (and the columns
    they slice by) and the search space. A typo in a gate must not cost a training run.

    Raises:
        SpecError: naming the rule or parameter, the key and the allowed values.
    """
    from loopml.governance import parse_rules

    slices = list(spec.evaluate.slices)
    for i, rule in enumerate(parse_rules(spec.gates)):
        column = getattr(rule, "slice", None) or getattr(rule, "column", None)
        if column is not None and column not in slices:
            raise SpecError(
                f"gates: gate #{i + 1} {rule.text!r} slices by column {column!r}, which is not in "
                f"evaluate.slices ({', '.join(slices) or 'none'}); add it there",
                field=f"gates[{i}]", rule="slice",
            )
    if spec.train.search is not None:
        from loopml.train import parse_space

        parse_space(spec.train.search.space)


def submit_recipe(ws: Workspace, spec: RecipeSpec | dict[str, Any], *, reason: str | None = None) -> Any:
    """Queue the recipe for the scheduler (a run request), once it is known to be runnable here.

    Checked now, not when the scheduler gets to it: the spec, and that its files
    exist on this machine (or, with no source, that the dataset is registered).

    Raises:
        SpecError: the spec is invalid.
        ValidationError: a file it names is not readable here (``data.source``, ``data.contract``).
        NotFoundError: no source, and the dataset (or its ``version``) is not registered.
    """
    from loopml.kernel.exceptions import ValidationError
    from loopml.trigger import submit_run

    if isinstance(spec, dict):
        spec = parse_spec(spec, origin="submitted recipe")
    check_spec(spec)
    data = spec.data
    files = {"data.source": data.source if data.source and "://" not in data.source else None,
             "data.contract": data.contract if isinstance(data.contract, str) else None}
    for key, path in files.items():
        if path is not None and not Path(path).is_file():
            raise ValidationError(
                f"{key}: {path} is not a file where the runs execute; send the file's content instead "
                "(the CLI uploads a local data file as a dataset version and inlines a contract)",
                field=key, rule="exists")
    if isinstance(data.contract, dict):
        from loopml.validate import Contract

        Contract.from_dict(data.contract)  # a broken inline contract fails now, naming its field
    _registered_version(ws, spec)  # with no source: a dataset (version) that is not registered fails here
    return submit_run(ws, spec.model_dump(by_alias=True, mode="json"), reason=reason)


def run_recipe(
    ws: Workspace,
    spec: RecipeSpec | dict[str, Any] | str | Path,
    *,
    executor: Any = None,
    progress: Any = False,
    trigger: dict[str, Any] | None = None,
    resume: bool = True,
) -> RecipeResult:
    """Run the continuous-training recipe; returns what it produced.

    ``progress``: ``True`` shows Rich progress on stderr; a ``loopml.runner.Reporter`` gets each step's events.

    Raises:
        SpecError: the spec is invalid (names the key and the allowed values).
        StepFailed: a step raised; the run is recorded as failed and a re-run resumes.
    """
    from loopml.runner import run_pipeline

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    check_spec(spec)
    result = run_pipeline(
        ws, recipe_pipeline(spec), recipe_params(ws, spec),
        executor=executor or ws.settings.executor, resume=resume, experiment=spec.experiment_name,
        trigger=trigger, progress=progress,
    )

    def out(name: str) -> Any:
        try:
            return result.output(name)
        except Exception:  # an output of a step that did not run
            return None

    return RecipeResult(
        run_id=result.run_id,
        status=result.status,
        steps=[s.to_dict() for s in result.steps.values()],
        dataset_version=out("dataset_version"),
        evaluation=out("evaluation"),
        gate_report=out("gate_report"),
        model_version=out("model_version"),
        training=out("training"),
    )
