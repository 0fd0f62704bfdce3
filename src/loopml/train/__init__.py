"""Training: splits, estimators by import path with automatic preprocessing, Optuna search."""

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
from loopml.train._search import ParamSpec, SearchResult, TrialResult, parse_space, search
from loopml.train._split import SPLIT_METHODS, Splits, split_frame

__all__ = [
    "PREPROCESS_MODES",
    "SEARCH_METRICS",
    "SPLIT_METHODS",
    "TASKS",
    "ParamSpec",
    "SearchResult",
    "Splits",
    "TrainedModel",
    "TrialResult",
    "build_estimator",
    "build_pipeline",
    "build_preprocessor",
    "infer_task",
    "metric_direction",
    "parse_space",
    "search",
    "split_frame",
    "train_model",
]
