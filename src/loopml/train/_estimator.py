"""Estimators by import path, automatic preprocessing, and ``train_model``.

The fitted object a user registers is ``TrainedModel.estimator``: a plain
scikit-learn ``Pipeline`` (preprocessing + estimator) that accepts the raw
feature frame, and pickles with no reference to loopml, so serving can load
it without importing training code.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import TrainingError, ValidationError

__all__ = [
    "PREPROCESS_MODES",
    "TASKS",
    "TrainedModel",
    "build_estimator",
    "build_pipeline",
    "build_preprocessor",
    "infer_task",
    "train_model",
]

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")
PreprocessMode = Literal["auto", "scale", "none"]
PREPROCESS_MODES: tuple[str, ...] = ("auto", "scale", "none")
# Above this many distinct integer values a target is treated as a quantity.
_MAX_INT_CLASSES = 20
# Below this many cells a fit runs on one thread: OpenMP/BLAS thread hand-offs cost more than
# the work, and on a busy machine their spin-waits starve (HistGradientBoosting on 700 x 7:
# 0.07-0.16 s on one thread, 0.7-1.0 s on two with other load on the 2 cores).
_SINGLE_THREAD_CELLS = 200_000


def _import_class(import_path: str) -> type:
    if not isinstance(import_path, str) or "." not in import_path.strip("."):
        raise ValidationError(
            f"estimator {import_path!r} must be a full import path 'package.module.Class', "
            "e.g. 'sklearn.ensemble.HistGradientBoostingClassifier'",
            field="estimator",
            rule="import_path",
        )
    module_name, _, attr = import_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            f"estimator {import_path!r}: module {module_name!r} cannot be imported ({exc})",
            field="estimator",
            rule="import_path",
        ) from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise ValidationError(
            f"estimator {import_path!r}: module {module_name!r} has no attribute {attr!r}",
            field="estimator",
            rule="import_path",
        )
    if not inspect.isclass(obj):
        raise ValidationError(
            f"estimator {import_path!r} is a {type(obj).__name__}, not a class",
            field="estimator",
            rule="class",
        )
    if not callable(getattr(obj, "fit", None)):
        raise ValidationError(
            f"estimator {import_path!r} has no fit method; it must follow the scikit-learn "
            "estimator contract (fit / predict)",
            field="estimator",
            rule="estimator",
        )
    return obj


def _init_params(cls: type) -> set[str] | None:
    """Constructor parameter names (None when ``**kwargs`` accepts anything)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    names = set()
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            return None
        if name != "self" and p.kind is not p.VAR_POSITIONAL:
            names.add(name)
    return names


def build_estimator(import_path: str, params: Mapping[str, Any] | None = None) -> Any:
    """An unfitted estimator from its import path and constructor params.

    Only classes with a ``fit`` method are accepted. Parameter names are
    checked against the constructor's signature here; values are checked at
    fit time by the estimator's own validation (see :func:`train_model`).

    Raises:
        ValidationError: naming the path and what failed (import, not a class,
            no ``fit``, unknown or rejected parameters).
    """
    cls = _import_class(import_path)
    params = dict(params or {})
    allowed = _init_params(cls)
    if allowed is not None:
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValidationError(
                f"estimator {import_path!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}",
                field="params",
                rule="param",
            )
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - foreign constructor errors → our tree
        raise ValidationError(
            f"estimator {import_path!r} rejected params {params!r}: {type(exc).__name__}: {exc}",
            field="params",
            rule="construct",
        ) from exc


def _is_categorical(s: pd.Series) -> bool:
    dtype = s.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _is_temporal(s: pd.Series) -> bool:
    return bool(
        pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype)
    )


def _allows_nan(estimator: Any) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # noqa: BLE001 - not a sklearn estimator: be safe and impute
        return False


def build_preprocessor(
    frame: pd.DataFrame, features: Sequence[str], *, estimator: Any = None, scale: bool = False
) -> Any:
    """A ``ColumnTransformer`` chosen from the dtypes of ``frame[features]``.

    Categorical, string, object and bool columns are one-hot encoded
    (unseen categories at serving time become all-zero, not an error).
    Numeric columns pass through when the estimator handles NaN natively
    (e.g. histogram gradient boosting), else get median imputation; with
    ``scale`` they are standardised too (linear models, SVMs, k-NN).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in features if _is_categorical(frame[c])]
    numeric = [c for c in features if c not in categorical]
    steps: list[tuple[str, Any, list[str]]] = []
    if categorical:
        steps.append(
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    if numeric:
        numeric_steps: list[tuple[str, Any]] = []
        if not _allows_nan(estimator):
            # keep_empty_features: an all-NaN column must not change the width at serving time
            numeric_steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        if scale:
            numeric_steps.append(("scale", StandardScaler()))
        steps.append(("numeric", Pipeline(numeric_steps) if numeric_steps else "passthrough", numeric))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def build_pipeline(
    estimator: Any, frame: pd.DataFrame, features: Sequence[str], preprocess: PreprocessMode = "auto"
) -> Any:
    """``estimator`` behind automatic preprocessing (``"auto"``/``"scale"``), or bare (``"none"``)."""
    if preprocess not in PREPROCESS_MODES:
        raise ValidationError(
            f"preprocess {preprocess!r} is unknown; allowed: {', '.join(PREPROCESS_MODES)}",
            field="preprocess",
            rule="choice",
        )
    if preprocess == "none":
        return estimator
    from sklearn.pipeline import Pipeline

    pre = build_preprocessor(frame, features, estimator=estimator, scale=preprocess == "scale")
    return Pipeline([("preprocess", pre), ("model", estimator)])


def infer_task(target: pd.Series, estimator: Any = None) -> Task:
    """Classification or regression: the estimator's kind first, else the target's values.

    String, category and bool targets, and integers with at most 20 distinct
    values, are classification; other numbers are regression.
    """
    from sklearn.base import is_classifier, is_regressor

    if estimator is not None:
        if is_classifier(estimator):
            return "classification"
        if is_regressor(estimator):
            return "regression"
    if _is_categorical(target):
        return "classification"
    if pd.api.types.is_integer_dtype(target.dtype) and target.nunique() <= _MAX_INT_CLASSES:
        return "classification"
    return "regression"


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted model and what it was trained on.

    ``estimator`` is what gets registered: a plain scikit-learn object that
    takes the raw feature frame. ``predict``/``predict_proba`` here select
    ``features`` first, so a frame with extra columns (target, ids) works.
    """

    estimator: Any
    estimator_path: str
    params: dict[str, Any]
    features: tuple[str, ...]
    target: str
    task: Task
    classes: tuple[Any, ...] | None = None
    preprocess: str = "auto"
    ignored_columns: tuple[str, ...] = field(default=())

    @property
    def classes_(self) -> np.ndarray | None:
        """The estimator's class order (the columns of ``predict_proba``)."""
        return None if self.classes is None else np.asarray(self.classes)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Predictions for the rows of ``df`` (its ``features`` columns)."""
        return np.asarray(self.estimator.predict(df[list(self.features)]))

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in ``classes`` order (classifiers only)."""
        if not hasattr(self.estimator, "predict_proba"):
            raise TrainingError(f"estimator {self.estimator_path!r} has no predict_proba")
        return np.asarray(self.estimator.predict_proba(df[list(self.features)]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (no estimator) for run params and the registry."""
        return {
            "estimator": self.estimator_path,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "features": list(self.features),
            "target": self.target,
            "task": self.task,
            "classes": None if self.classes is None else [_jsonable(c) for c in self.classes],
            "preprocess": self.preprocess,
            "ignored_columns": list(self.ignored_columns),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _select_features(
    df: pd.DataFrame, target: str, features: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """(features, ignored): explicit features are checked; default is every non-time column."""
    if features is not None:
        features = list(features)
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise ValidationError(
                f"features {missing!r} are not columns; columns: {', '.join(map(str, df.columns))}",
                field="features",
                rule="column",
            )
        if target in features:
            raise ValidationError(
                f"features include the target {target!r}; a model cannot learn from its own label",
                field="features",
                rule="leak",
            )
        temporal = [c for c in features if _is_temporal(df[c])]
        if temporal:
            raise ValidationError(
                f"features {temporal!r} are datetime/timedelta columns, which models cannot use "
                "directly; derive numeric features from them (hour, weekday, age ...)",
                field="features",
                rule="dtype",
            )
        if not features:
            raise ValidationError("features is empty; name at least one column", field="features", rule="non_empty")
        return features, []
    rest = [str(c) for c in df.columns if c != target]
    ignored = [c for c in rest if _is_temporal(df[c])]
    chosen = [c for c in rest if c not in ignored]
    if not chosen:
        raise ValidationError(
            f"no feature columns: the frame has only the target {target!r} and time columns {ignored!r}",
            field="features",
            rule="non_empty",
        )
    return chosen, ignored


def _with_seed(estimator: Any, params: Mapping[str, Any], seed: int | None) -> Any:
    """Fix ``random_state`` (when the estimator has one and the user did not set it)."""
    if seed is None or "random_state" in params or not hasattr(estimator, "set_params"):
        return estimator
    try:
        if "random_state" in estimator.get_params(deep=False):
            estimator.set_params(random_state=seed)
    except Exception:  # noqa: BLE001 - not a sklearn-style estimator; leave it alone
        pass
    return estimator


def _thread_limit(cells: int) -> Any:
    """One native thread for a small fit (see ``_SINGLE_THREAD_CELLS``); the libraries' own choice otherwise."""
    if cells >= _SINGLE_THREAD_CELLS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    return threadpool_limits(limits=1)


def train_model(
    train_df: pd.DataFrame,
    *,
    target: str,
    estimator: str,
    params: Mapping[str, Any] | None = None,
    features: Sequence[str] | None = None,
    preprocess: PreprocessMode = "auto",
    seed: int | None = 0,
) -> TrainedModel:
    """Fit ``estimator`` (an import path) with ``params`` on ``train_df``.

    Features default to every column except the target and datetime columns
    (those are listed in ``ignored_columns``). ``seed`` sets ``random_state``
    unless ``params`` does, so a run is reproducible by default.

    Raises:
        ValidationError: bad columns, a missing target value, or a target the
            estimator cannot learn (e.g. a regressor on string labels).
        TrainingError: the estimator's ``fit`` failed (message names it).
    """
    if not isinstance(train_df, pd.DataFrame) or len(train_df) == 0:
        raise ValidationError("train_df must be a non-empty pandas DataFrame", field="train_df", rule="non_empty")
    if target not in train_df.columns:
        raise ValidationError(
            f"target {target!r} is not a column; columns: {', '.join(map(str, train_df.columns))}",
            field="target",
            rule="column",
        )
    y = train_df[target]
    n_missing = int(y.isna().sum())
    if n_missing:
        raise ValidationError(
            f"target {target!r} has {n_missing} missing values; drop or fill them before training",
            field="target",
            rule="not_null",
        )
    chosen, ignored = _select_features(train_df, target, features)
    params = dict(params or {})
    est = _with_seed(build_estimator(estimator, params), params, seed)
    task = infer_task(y, est)
    _check_target(y, task, estimator)
    model = build_pipeline(est, train_df, chosen, preprocess)
    try:
        with _thread_limit(len(train_df) * len(chosen)):
            model.fit(train_df[chosen], y)
    except Exception as exc:  # noqa: BLE001 - foreign fit errors → our tree
        raise TrainingError(
            f"training {estimator!r} with params {params!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    classes = None
    if task == "classification":
        found = getattr(model, "classes_", None)
        found = found if found is not None else sorted(pd.unique(y))
        # Plain Python scalars: readable in reprs and JSON, equal to the numpy ones.
        classes = tuple(c.item() if isinstance(c, np.generic) else c for c in found)
    return TrainedModel(
        estimator=model,
        estimator_path=estimator,
        params=params,
        features=tuple(chosen),
        target=target,
        task=task,
        classes=classes,
        preprocess=preprocess,
        ignored_columns=tuple(ignored),
    )


def _check_target(y: pd.Series, task: Task, estimator: str) -> None:
    if task == "regression" and not pd.api.types.is_numeric_dtype(y.dtype):
        raise ValidationError(
            f"estimator {estimator!r} is a regressor but target {y.name!r} is {y.dtype} "
            "(not numeric); use a classifier",
            field="estimator",
            rule="task",
        )
    if task == "classification":
        n_classes = y.nunique()
        if n_classes < 2:
            raise ValidationError(
                f"target {y.name!r} has a single class ({y.iloc[0]!r}); classification needs at least two",
                field="target",
                rule="classes",
            )
        if pd.api.types.is_float_dtype(y.dtype) and not np.all(np.mod(y.to_numpy(), 1) == 0):
            raise ValidationError(
                f"estimator {estimator!r} is a classifier but target {y.name!r} has continuous "
                "values; use a regressor",
                field="estimator",
                rule="task",
            )
