"""ORM rows of the metadata store, one module per concept.

Every table lives on :data:`Base.metadata`; Alembic migrations are generated
from it and a test checks that the migrations and the models agree. Rows are
storage, not API: services return plain records built from them.
"""

from loopml.metadata._orm.approvals import ApprovalDecision, ApprovalPolicy, ApprovalRequest, RetentionPolicy
from loopml.metadata._orm.audit import AuditEvent, AuditHead
from loopml.metadata._orm.base import Base, JSONType, UTCDateTime
from loopml.metadata._orm.datasets import Dataset, DatasetVersion
from loopml.metadata._orm.deploy import Endpoint, Rollout, TrafficChange
from loopml.metadata._orm.identity import ApiToken, RoleBinding, User
from loopml.metadata._orm.lineage import LineageEdge
from loopml.metadata._orm.loop import Alert, Lease, Monitor, MonitorReport, Notification, RunRequest, Trigger
from loopml.metadata._orm.models import AliasHistory, ModelAlias, ModelVersion, RegisteredModel
from loopml.metadata._orm.runs import Metric, Param, Run, RunArtifact

__all__ = [
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalRequest",
    "RetentionPolicy",
    "ApiToken",
    "RoleBinding",
    "User",
    "Endpoint",
    "Rollout",
    "TrafficChange",
    "Alert",
    "Lease",
    "Monitor",
    "MonitorReport",
    "Notification",
    "RunRequest",
    "Trigger",
    "AliasHistory",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Dataset",
    "DatasetVersion",
    "JSONType",
    "LineageEdge",
    "Metric",
    "ModelAlias",
    "ModelVersion",
    "Param",
    "RegisteredModel",
    "Run",
    "RunArtifact",
    "UTCDateTime",
]
