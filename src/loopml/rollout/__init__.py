"""Online analysis and control of rollouts: promote, advance, hold or roll back on evidence."""

from loopml.rollout._analysis import (
    SignalResult,
    compare_versions,
    look_alpha,
    metric_comparison,
    two_proportion_test,
)
from loopml.rollout._controller import (
    Decision,
    analyze_endpoint,
    analyze_rollout,
    analyze_running,
    controller_tick,
    shadow_endpoint,
)
from loopml.rollout._history import Answer, Served, served_between, who_answered

__all__ = [
    "Answer",
    "Decision",
    "Served",
    "SignalResult",
    "analyze_endpoint",
    "analyze_rollout",
    "analyze_running",
    "compare_versions",
    "controller_tick",
    "look_alpha",
    "metric_comparison",
    "served_between",
    "shadow_endpoint",
    "two_proportion_test",
    "who_answered",
]
