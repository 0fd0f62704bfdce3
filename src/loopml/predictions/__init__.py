"""The prediction log: append-only partitioned Parquet, read with DuckDB, joined with feedback.

Serving hands records to a :class:`PredictionLog` (a ``PredictionSink``); the
monitor and people read windows back with :func:`query_predictions`,
:func:`count_predictions` or :func:`open_view`; true labels arrive through
:func:`record_feedback` and meet their predictions in :func:`join_feedback`.
"""

from loopml.predictions._feedback import (
    FEEDBACK_FORMATS,
    FeedbackResult,
    feedback_files,
    join_feedback,
    read_feedback_file,
    record_feedback,
)
from loopml.predictions._files import parse_time
from loopml.predictions._json import json_records
from loopml.predictions._privacy import (
    ErasureResult,
    RetentionPolicyRecord,
    RetentionResult,
    apply_retention,
    erase_subject,
    list_retention,
    set_retention,
)
from loopml.predictions._log import PredictionLog, close_all_logs, install_sigterm_handler, open_prediction_log
from loopml.predictions._query import (
    CompactResult,
    compact,
    count_predictions,
    list_endpoints,
    open_view,
    query_predictions,
)
from loopml.predictions._schema import PredictionSink, records_to_table
from loopml.predictions._tail import WindowTail

__all__ = [
    "FEEDBACK_FORMATS",
    "ErasureResult",
    "RetentionPolicyRecord",
    "RetentionResult",
    "apply_retention",
    "erase_subject",
    "list_retention",
    "set_retention",
    "CompactResult",
    "FeedbackResult",
    "PredictionLog",
    "PredictionSink",
    "WindowTail",
    "close_all_logs",
    "compact",
    "count_predictions",
    "feedback_files",
    "install_sigterm_handler",
    "json_records",
    "join_feedback",
    "list_endpoints",
    "open_prediction_log",
    "open_view",
    "parse_time",
    "query_predictions",
    "read_feedback_file",
    "record_feedback",
    "records_to_table",
]
