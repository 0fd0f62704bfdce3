"""Training: splits, estimators by import path with automatic preprocessing, Optuna search.

Names resolve lazily, so checking a recipe's search space (``parse_space``)
loads no numpy, pandas or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> private module that defines it
_HOMES: dict[str, str] = {
    "PREPROCESS_MODES": "loopml.train._estimator",
    "TASKS": "loopml.train._estimator",
    "TrainedModel": "loopml.train._estimator",
    "build_estimator": "loopml.train._estimator",
    "build_pipeline": "loopml.train._estimator",
    "build_preprocessor": "loopml.train._estimator",
    "infer_task": "loopml.train._estimator",
    "train_model": "loopml.train._estimator",
    "SEARCH_METRICS": "loopml.train._scoring",
    "metric_direction": "loopml.train._scoring",
    "ParamSpec": "loopml.train._space",
    "parse_space": "loopml.train._space",
    "SearchResult": "loopml.train._search",
    "TrialResult": "loopml.train._search",
    "search": "loopml.train._search",
    "SPLIT_METHODS": "loopml.train._split",
    "Splits": "loopml.train._split",
    "split_frame": "loopml.train._split",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loopml.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from loopml.train._estimator import (
        PREPROCESS_MODES,
        TASKS,
        TrainedModel,
        build_estimator,
        build_pipeline,
        build_preprocessor,
        infer_task,
        train_model,
    )
    from loopml.train._scoring import SEARCH_METRICS, metric_direction
    from loopml.train._search import SearchResult, TrialResult, search
    from loopml.train._space import ParamSpec, parse_space
    from loopml.train._split import SPLIT_METHODS, Splits, split_frame
