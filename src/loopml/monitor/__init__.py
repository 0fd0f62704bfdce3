"""Monitoring: scheduled checks of an endpoint's prediction log against its reference.

    define_monitor(ws, MonitorSpec.from_yaml("churn.yaml"))
    report = run_monitor(ws, "churn")          # a defined monitor, or the endpoint's default one
    report.status, report.summary["drifted_features"], report_html(ws, report.id)

Subpackages: ``drift`` (profiles and drift tests) and ``alerts`` (incidents,
notifiers). See README.md for the spec format and the invariants.
"""

from loopml.monitor._checks import (
    CHECKS,
    CheckResult,
    DataDriftCheck,
    HealthCheck,
    MonitorCheck,
    MonitorReference,
    MonitorWindow,
    OutliersCheck,
    PerformanceCheck,
    PredictionDriftCheck,
    QualityCheck,
    SchemaCheck,
    SegmentsCheck,
)
from loopml.monitor._html import render_report
from loopml.monitor._reports import (
    MonitorRecord,
    MonitorReportRecord,
    get_monitor,
    get_report,
    list_monitors,
    list_reports,
    report_html,
)
from loopml.monitor._run import define_monitor, due_monitors, run_monitor
from loopml.monitor._spec import (
    CHECK_NAMES,
    AlertRule,
    MonitorSpec,
    default_spec,
    load_spec,
)

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "AlertRule",
    "CheckResult",
    "DataDriftCheck",
    "HealthCheck",
    "MonitorCheck",
    "MonitorRecord",
    "MonitorReference",
    "MonitorReportRecord",
    "MonitorSpec",
    "MonitorWindow",
    "OutliersCheck",
    "PerformanceCheck",
    "PredictionDriftCheck",
    "QualityCheck",
    "SchemaCheck",
    "SegmentsCheck",
    "default_spec",
    "define_monitor",
    "due_monitors",
    "get_monitor",
    "get_report",
    "list_monitors",
    "list_reports",
    "load_spec",
    "render_report",
    "report_html",
    "run_monitor",
]
