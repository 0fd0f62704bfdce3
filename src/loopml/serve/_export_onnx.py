"""scikit-learn -> ONNX with skl2onnx, and running the result with onnxruntime.

Inputs follow the model's signature: a pipeline that starts with a
``ColumnTransformer`` gets one ``[None, 1]`` input per column (string tensors
for ``category``/``string``, float for numbers and booleans), so an edge
device feeds named columns exactly as the contract names them; any other
all-numeric model gets one ``input`` tensor ``[None, k]`` in feature order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from loopml.kernel.exceptions import MissingExtraError, RegistryError, ValidationError

__all__ = ["SUPPORTED", "convert", "input_layout", "onnx_feeds", "run_onnx", "unsupported_parts"]

#: What skl2onnx converts and loopml has checked for parity (class names; pipelines may nest them).
SUPPORTED_ESTIMATORS = frozenset({
    "LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDClassifier", "SGDRegressor",
    "LinearSVC", "LinearSVR",
    "DecisionTreeClassifier", "DecisionTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "KNeighborsClassifier",
    "KNeighborsRegressor", "GaussianNB", "MLPClassifier", "MLPRegressor",
})
SUPPORTED_TRANSFORMERS = frozenset({
    "Pipeline", "ColumnTransformer", "OneHotEncoder", "OrdinalEncoder", "SimpleImputer", "StandardScaler",
    "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer", "KBinsDiscretizer", "PolynomialFeatures",
    "VarianceThreshold", "PCA",
})
SUPPORTED = tuple(sorted(SUPPORTED_ESTIMATORS | SUPPORTED_TRANSFORMERS))
_STRINGS = ("category", "string")


def _require() -> tuple[Any, Any]:
    try:
        import skl2onnx
    except ImportError as exc:
        raise MissingExtraError("skl2onnx", "onnx", "ONNX export") from exc
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("onnxruntime", "onnx", "ONNX export") from exc
    return skl2onnx, onnxruntime


def unsupported_parts(est: Any) -> list[str]:
    """Class names inside ``est`` (pipelines, column transformers) that are not in :data:`SUPPORTED`."""
    name = type(est).__name__
    if isinstance(est, str):  # "passthrough" / "drop"
        return []
    bad: list[str] = []
    if name == "Pipeline":
        for _, step in est.steps:
            bad += unsupported_parts(step)
    elif name == "ColumnTransformer":
        for _, trans, _ in getattr(est, "transformers_", est.transformers):
            bad += unsupported_parts(trans)
    elif name not in SUPPORTED:
        bad.append(name)
    elif name.startswith("HistGradientBoosting") and getattr(est, "is_categorical_", None) is not None \
            and bool(np.any(est.is_categorical_)):
        bad.append(f"{name} with native categorical features (one-hot encode them in the pipeline instead)")
    return bad


def _first_step(est: Any) -> Any:
    while type(est).__name__ == "Pipeline":
        est = est.steps[0][1]
    return est


def input_layout(est: Any, signature: Mapping[str, Any] | None) -> list[tuple[str, str, list[str]]]:
    """``[(input name, "string"|"float", [feature, ...]), ...]``: what the ONNX graph takes."""
    columns: Mapping[str, Any] = (signature or {}).get("columns") or {}
    names = [str(n) for n in getattr(est, "feature_names_in_", [])] or list(columns)
    if not names:
        raise ValidationError("the model has no signature and no feature names: ONNX inputs cannot be named",
                              field="signature", rule="required")
    for n in names:
        if columns.get(n, {}).get("type") == "datetime":
            raise ValidationError(f"feature {n!r} is a datetime; ONNX export takes numbers and strings only",
                                  field=n, rule="type")
    kinds = {n: "string" if columns.get(n, {}).get("type") in _STRINGS else "float" for n in names}
    if type(_first_step(est)).__name__ == "ColumnTransformer":
        return [(n, kinds[n], [n]) for n in names]
    strings = [n for n in names if kinds[n] == "string"]
    if strings:
        raise ValidationError(
            f"model {type(est).__name__} takes text features {strings} but does not start with a "
            "ColumnTransformer; ONNX export needs the encoding inside the pipeline",
            field=strings[0], rule="onnx_inputs")
    return [("input", "float", names)]


@contextlib.contextmanager
def _protobuf_compat() -> Iterator[None]:
    """skl2onnx <= 1.20 passes Python ``False`` for an int attribute of tree leaves; protobuf 7 refuses it.

    Why here: a HistGradientBoosting export would fail with a protobuf type
    error on a current install. We coerce that one argument while converting
    and restore the function afterwards; the parity check verifies the result.
    """
    try:
        import skl2onnx.common.tree_ensemble as te
    except ImportError:
        yield
        return
    original = getattr(te, "add_node", None)
    if original is None:
        yield
        return

    def add_node(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if isinstance(flag, (bool, np.bool_)) or (flag is not None and hasattr(flag, "item")):
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return original(*args, **kwargs)

    te.add_node = add_node
    try:
        yield
    finally:
        te.add_node = original


def convert(est: Any, layout: list[tuple[str, str, list[str]]], *, classifier: bool) -> Any:
    """The ONNX ``ModelProto`` for ``est`` (probabilities as a plain tensor, no ZipMap)."""
    skl2onnx, _ = _require()
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [
        (name, StringTensorType([None, len(cols)]) if kind == "string" else FloatTensorType([None, len(cols)]))
        for name, kind, cols in layout
    ]
    options = {id(est): {"zipmap": False}} if classifier else None
    try:
        with _protobuf_compat():
            return skl2onnx.convert_sklearn(est, initial_types=initial_types, options=options)
    except Exception as exc:  # skl2onnx raises RuntimeError, NameError, ValueError, TypeError ...
        raise RegistryError(
            f"skl2onnx could not convert {type(est).__name__}: {type(exc).__name__}: {str(exc)[:300]}; "
            f"supported parts: {', '.join(SUPPORTED)}"
        ) from exc


def onnx_feeds(frame: Any, layout: list[tuple[str, str, list[str]]]) -> dict[str, np.ndarray]:
    """The input tensors for the rows of ``frame``."""
    feeds: dict[str, np.ndarray] = {}
    for name, kind, cols in layout:
        block = frame[cols]
        if kind == "string":
            feeds[name] = block.astype(str).to_numpy(dtype=object)
        else:
            feeds[name] = block.to_numpy(dtype=np.float32, na_value=np.nan)
    return feeds


def run_onnx(model_bytes: bytes, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of the ONNX model on CPU (label first; probabilities second for classifiers)."""
    _, ort = _require()
    try:
        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        return [np.asarray(o) for o in session.run(None, dict(feeds))]
    except Exception as exc:
        raise RegistryError(f"onnxruntime cannot run the exported model: {type(exc).__name__}: {str(exc)[:300]}") from exc
