"""Training: splits, estimators by import path with automatic preprocessing, Optuna search.

Names resolve lazily, so checking a recipe's search space (``parse_space``)
loads no numpy, pandas or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.kernel.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


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
