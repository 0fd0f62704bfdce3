"""The continuous-training recipe spec: YAML in, a validated, typed value out.

Errors name the key path, the rule and the allowed values, e.g.
``recipe.yaml: split.method: must be one of 'random', 'stratified', 'time' (got 'randm')``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError as PydanticError, model_validator

from loopml.kernel.exceptions import SpecError

__all__ = [
    "DataSpec",
    "RecipeSpec",
    "RegisterSpec",
    "SearchSpec",
    "SplitSpec",
    "TrainSpec",
    "load_spec",
    "parse_spec",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DataSpec(_Strict):
    """Where the training data comes from and what it must look like."""

    dataset: str
    source: str | None = None
    sql_url: str | None = None
    query: str | None = None
    #: With no source: train on this registered version of ``dataset`` (none given: its newest).
    version: int | None = Field(None, ge=1)
    target: str
    time_column: str | None = None
    #: A contract file, or the contract itself (a mapping, as a remote run sends it).
    contract: str | dict[str, Any] | None = None
    drop: list[str] = Field(default_factory=list)
    features: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.query and not self.sql_url:
            raise ValueError("'query' needs 'sql_url' (a SQLAlchemy URL)")
        if self.version is not None and (self.source or self.sql_url):
            raise ValueError("'version' names a registered version of the dataset: "
                             "give it without 'source' or 'sql_url'")
        return self


class SplitSpec(_Strict):
    method: Literal["random", "stratified", "time"] = "stratified"
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.0, ge=0, lt=1)
    seed: int = 0


class SearchSpec(_Strict):
    n_trials: int = Field(10, ge=1, le=10_000)
    metric: str = "roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"
    space: dict[str, dict[str, Any]]
    seed: int = 0


class TrainSpec(_Strict):
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    preprocess: Literal["auto", "none"] = "auto"
    search: SearchSpec | None = None


class EvaluateSpec(_Strict):
    slices: list[str] = Field(default_factory=list)
    positive_label: Any = None


class RegisterSpec(_Strict):
    model: str
    #: Alias given to a candidate that passes every gate.
    alias_on_pass: str | None = "champion"
    #: Alias given to a candidate that fails (it is still registered, for the record).
    alias_on_fail: str | None = None
    #: Register a candidate that failed its gates (without the passing alias).
    register_failed: bool = True
    #: The alias of the model in production that change gates compare against.
    compare_with: str = "champion"


class RecipeSpec(_Strict):
    """One continuous-training pipeline: ingest → validate → split → train → evaluate → gate → register."""

    name: str
    experiment: str | None = None
    data: DataSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    train: TrainSpec
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    gates: list[str | dict[str, Any]] = Field(default_factory=list)
    #: ``register`` in YAML; renamed here because BaseModel's metaclass owns ``register``.
    registry: RegisterSpec = Field(alias="register")

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, error["loc"][:-1])
        allowed = ", ".join(f.alias or n for n, f in parent.model_fields.items()) if parent else "?"
        return f"{loc}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{loc}: must be one of {expected} (got {error.get('input')!r})"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg} (got {error.get('input')!r})" if "input" in error and kind != "value_error" else f"{loc}: {msg}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def parse_spec(data: Any, *, origin: str = "recipe") -> RecipeSpec:
    """Validate a recipe from a dict (already-parsed YAML or Python)."""
    if not isinstance(data, dict):
        keys = ", ".join(f.alias or n for n, f in RecipeSpec.model_fields.items())
        raise SpecError(f"{origin}: a recipe must be a mapping with keys {keys}", rule="type")
    try:
        return RecipeSpec.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise SpecError(f"{origin}: {_describe(first, RecipeSpec)}{more}", field=loc, rule=first["type"]) from None


def load_spec(path: str | Path) -> RecipeSpec:
    """Read and validate a recipe YAML file. Relative paths in it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"recipe file {path} does not exist", field="path", rule="exists") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path.name}: not valid YAML{where}: {getattr(exc, 'problem', exc)}", rule="yaml") from None
    spec = parse_spec(data, origin=path.name)
    data_spec = spec.data
    base = path.parent
    updates: dict[str, Any] = {}
    if data_spec.source and "://" not in data_spec.source and not Path(data_spec.source).is_absolute():
        updates["source"] = str((base / data_spec.source).resolve())
    if isinstance(data_spec.contract, str) and not Path(data_spec.contract).is_absolute():
        updates["contract"] = str((base / data_spec.contract).resolve())
    if updates:
        spec = spec.model_copy(update={"data": data_spec.model_copy(update=updates)})
    return spec
