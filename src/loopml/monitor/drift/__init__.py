"""Drift detection: reference profiles, per-feature tests and the dataset-level detector.

    profile = profile_frame(train_df)                 # once, at training time; JSON-safe
    report = DriftDetector().fit(profile).score(window_df)
    report.dataset_drift, report.drifted_columns, report.to_dict()

See README.md in this folder for the invariants and the test-choice table.
"""

from loopml.monitor.drift._detector import DEFAULT_MIN_EFFECT, DriftDetector
from loopml.monitor.drift._refprofile import ColumnReference, DriftReference, profile_frame
from loopml.monitor.drift._report import DriftReport, FeatureResult, OutlierResult
from loopml.monitor.drift._selection import CORRECTIONS, METHODS, adjust_pvalues
from loopml.monitor.drift._stattests import (
    PSI,
    ChiSquareTest,
    DriftTest,
    JensenShannonDistance,
    KSTest,
    WassersteinDistance,
    ZTest,
)

__all__ = [
    "CORRECTIONS",
    "DEFAULT_MIN_EFFECT",
    "METHODS",
    "PSI",
    "ChiSquareTest",
    "ColumnReference",
    "DriftDetector",
    "DriftReference",
    "DriftReport",
    "DriftTest",
    "FeatureResult",
    "JensenShannonDistance",
    "KSTest",
    "OutlierResult",
    "WassersteinDistance",
    "ZTest",
    "adjust_pvalues",
    "profile_frame",
]
