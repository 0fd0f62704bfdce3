"""API schemas: pydantic models of what the REST API sends and accepts.

They mirror the service records' ``to_dict()`` (rows never reach here), so
the OpenAPI document describes real responses and FastAPI checks every
response against its model before it leaves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

JSON = dict[str, Any]

#: A time sent as ``datetime.isoformat()`` (``+00:00``, not ``Z``): the same text as the records' ``to_dict()``,
#: so the CLI prints the same JSON whether it reads the store or the server.
Time = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, ser_json_inf_nan="null")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- datasets ---------------------------------------------------------------


class DatasetOut(_Out):
    name: str
    description: str | None
    project: str
    n_versions: int
    latest_version: int | None
    has_contract: bool
    created_at: Time
    created_by: str


class DatasetVersionOut(_Out):
    name: str
    version: int
    ref: str
    digest: str
    artifact_digest: str
    n_rows: int
    n_columns: int
    columns_schema: list[JSON] = Field(alias="schema")
    source: JSON
    created_at: Time
    created_by: str
    new: bool = False
    profile: JSON | None = None


class IngestedOut(DatasetVersionOut):
    """A stored version and how it fared against its dataset's contract."""

    validation: JSON


class ContractOut(_Out):
    """A data contract (CONTRIBUTING.md shape)."""

    version: int
    columns: dict[str, JSON]
    target: str | None


class ContractIn(_In):
    contract: JSON = Field(description="The contract: {version, columns: {name: rules}, target}")
    reason: str | None = Field(None, max_length=2000)


class ValidateIn(_In):
    contract: JSON | None = Field(None, description="Check against this contract instead of the stored one")


class RuleFailureOut(_Out):
    column: str
    rule: str
    severity: str
    count: int
    message: str
    examples: list[JSON]


class ValidationReportOut(_Out):
    ok: bool
    n_rows: int
    n_columns: int
    n_errors: int
    n_warnings: int
    summary: str
    failures: list[RuleFailureOut]


class IssueOut(_Out):
    kind: str
    severity: str
    column: str | None
    message: str


class ProfileOut(_Out):
    ref: str
    profile: JSON
    issues: list[IssueOut]


# ---- runs -------------------------------------------------------------------


class ArtifactOut(_Out):
    name: str
    digest: str
    size: int
    media_type: str | None


class GitOut(_Out):
    commit: str | None
    dirty: bool | None


class RunOut(_Out):
    id: str
    name: str
    experiment: str
    kind: str
    status: str
    parent_id: str | None
    started_at: Time
    ended_at: Time | None
    duration_s: float | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    metric_steps: dict[str, int]
    tags: dict[str, Any]
    artifacts: list[ArtifactOut]
    git: GitOut
    cache_key: str | None
    trigger: JSON | None
    error: str | None
    created_by: str


class CompareOut(_Out):
    runs: list[JSON]
    params: dict[str, JSON]
    metrics: dict[str, JSON]
    tags: dict[str, JSON]


class MetricPointOut(_Out):
    step: int
    value: float | None
    ts: float


class MetricHistoryOut(_Out):
    run_id: str
    key: str
    points: list[MetricPointOut]


# ---- models -----------------------------------------------------------------


class ModelOut(_Out):
    id: int
    name: str
    project: str
    description: str | None
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]
    created_at: Time
    created_by: str


class ModelVersionOut(_Out):
    id: int
    model_id: int
    name: str
    version: int
    ref: str
    artifact_digest: str
    flavor: str
    task: str | None
    signature: JSON | None
    profile: JSON | None
    evaluation: JSON | None
    gate_report: JSON | None
    gates_passed: bool | None
    run_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    tags: JSON
    description: str | None
    created_at: Time
    created_by: str
    aliases: list[str]
    dataset_versions: list[str]


class AliasOut(_Out):
    name: str
    alias: str
    ref: str
    version: int
    version_id: int
    updated_at: Time
    previous_version: int | None


class AliasChangeOut(_Out):
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    ts: Time


class SetAliasIn(_In):
    version: int = Field(ge=1, le=2_147_483_647)
    reason: str | None = Field(None, max_length=2000)


class ReasonIn(_In):
    reason: str | None = Field(None, max_length=2000)


class RequiredReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


# ---- deployments ------------------------------------------------------------


class EndpointOut(_Out):
    id: int
    name: str
    model_name: str
    policy: JSON
    revision: int
    created_at: Time
    updated_at: Time
    serving_versions: list[int]


class TrafficOut(_Out):
    revision: int
    policy: JSON
    rollout_id: int | None
    actor: str
    reason: str | None
    ts: Time


class RolloutOut(_Out):
    id: int
    endpoint: str
    model_name: str
    strategy: str
    baseline_version: int | None
    candidate_version: int
    status: str
    config: JSON
    step: int
    step_started_at: Time
    evidence: list[JSON]
    override_reason: str | None
    created_at: Time
    created_by: str
    ended_at: Time | None
    candidate_weight: float


class ServedOut(_Out):
    """Which versions had traffic on an endpoint in ``[since, until]``, and the policies in force then."""

    endpoint: str
    since: Time
    until: Time
    versions_served: list[int]
    changes: list[TrafficOut]


class AnswerOut(_Out):
    """One logged row of a request: the endpoint and version that scored it, and what it said."""

    endpoint: str
    request_id: str
    row: int
    ts: Time | None
    model_name: str | None
    model_version: int | None
    status: int | None
    latency_ms: float | None
    prediction: Any = None
    error: str | None
    shadow: bool


class DecisionOut(_Out):
    """One analysis of a rollout and what it did: promote | advance | hold | rollback | skip | release."""

    endpoint: str
    rollout_id: int
    action: str
    reason: str
    signals: list[JSON]


class RolloutStatusOut(_Out):
    endpoint: str
    rollout: RolloutOut | None


class DeployOptions(_In):
    """Rollout options (``loopml.deploy.DEFAULTS``); each strategy accepts its own subset."""

    alias: str | None = Field(None, max_length=128)
    interval_s: float | None = Field(None, gt=0, le=86_400)
    alpha: float | None = Field(None, gt=0, lt=1)
    early_alpha: float | None = Field(
        None, ge=0, lt=1, description="Quick looks between analyses roll back at p < early_alpha; 0 turns them off")
    max_error_rate_increase: float | None = Field(None, ge=0, le=1)
    max_latency_ratio: float | None = Field(None, gt=0, le=1000)
    min_latency_increase_ms: float | None = Field(None, ge=0, le=3_600_000)
    max_divergence: float | None = Field(None, ge=0, le=1)
    metric: str | None = Field(None, max_length=64)
    max_metric_drop: float | None = Field(None, ge=0, le=1)
    min_labels: int | None = Field(None, ge=0, le=10_000_000)
    auto: bool | None = None
    steps: list[float] | None = Field(None, min_length=1, max_length=20)
    min_requests: int | None = Field(None, ge=0, le=100_000_000)
    min_seconds: float | None = Field(None, ge=0, le=30 * 86_400)
    keep_warm_s: float | None = Field(None, ge=0, le=30 * 86_400)
    split: float | None = Field(None, gt=0, lt=1)
    shadow_fraction: float | None = Field(None, gt=0, le=1, description="Shadow: the share of requests it scores")


class DeployIn(_In):
    model_ref: str = Field(min_length=1, max_length=300, description="NAME/VERSION or NAME@ALIAS")
    strategy: Literal["direct", "canary", "blue-green", "shadow", "ab"] = "direct"
    override_reason: str | None = Field(None, max_length=2000)
    options: DeployOptions = Field(default_factory=lambda: DeployOptions.model_validate({}))


# ---- monitors, reports, alerts ----------------------------------------------


class MonitorOut(_Out):
    id: int
    name: str
    endpoint: str
    spec: JSON
    schedule: str | None
    enabled: bool
    next_due_at: Time | None
    last_run_at: Time | None
    created_at: Time
    created_by: str


class ReportOut(_Out):
    id: int
    monitor_id: int | None
    endpoint: str
    window_start: Time | None
    window_end: Time | None
    n_rows: int
    status: str
    summary: JSON
    report: JSON | None = None
    html_digest: str | None
    created_at: Time


class AlertOut(_Out):
    id: int
    dedup_key: str
    rule: str
    endpoint: str | None
    severity: str
    status: str
    message: str
    context: JSON | None
    count: int
    first_seen: Time
    last_seen: Time
    monitor_id: int | None
    report_id: int | None
    acked_by: str | None
    acked_at: Time | None
    resolved_at: Time | None
    opened: bool = False


class MonitorSpecIn(_In):
    spec: JSON = Field(description="A monitor spec: {name?, endpoint, model?, window, schedule?, reference, checks, "
                                   "alerts, enabled} (the YAML of `loopml monitor define`, as JSON)")


class AckIn(_In):
    note: str | None = Field(None, max_length=2000)


# ---- predictions --------------------------------------------------------------


class CountOut(_Out):
    endpoint: str
    count: int


class ParityOut(_Out):
    n_rows: int
    source: str
    tolerance: float
    max_abs_diff_proba: float | None
    max_abs_diff: float | None
    label_agreement: float | None
    passed: bool


class ExportOut(_Out):
    model_name: str
    model_version: int
    format: str
    path: str = Field(description="Where the server wrote it; download the bytes from .../exports/{digest}")
    digest: str
    size: int
    parity: ParityOut
    inputs: list[dict[str, Any]]


class BatchOut(_Out):
    batch_id: str
    model_name: str
    model_version: int
    input_path: str = Field(description="What the caller called the upload")
    output_path: str = Field(description="artifact:SHA256; download it from "
                                         "/prediction-batches/{batch_id}/files/{sha256}")
    reject_path: str | None = Field(description="artifact:SHA256 of the rows that broke the contract, if any")
    rows_in: int
    rows_scored: int
    rows_rejected: int
    input_digest: str
    output_digest: str
    reject_digest: str | None
    seconds: float


class FeedbackOut(_Out):
    endpoint: str
    rows: int
    path: str


class CompactIn(_In):
    date: str = Field(min_length=10, max_length=10, description="The UTC day to compact, YYYY-MM-DD")


class CompactOut(_Out):
    endpoint: str
    date: str
    files_before: int
    files_after: int
    rows: int


# ---- triggers ---------------------------------------------------------------


class TriggerOut(_Out):
    id: int
    name: str
    kind: str
    config: JSON
    recipe_path: str | None
    enabled: bool
    next_due_at: Time | None
    last_fired_at: Time | None
    state: JSON


class RunRequestOut(_Out):
    id: int
    trigger_id: int | None
    status: str
    context: JSON
    run_id: str | None
    error: str | None
    created_at: Time
    started_at: Time | None
    ended_at: Time | None
    result: JSON | None = Field(None, description="What the run produced, once it succeeded (as `loopml run --json`)")
    progress: JSON | None = Field(None, description='The step events so far: {"events": [[step, status, seconds]]}')


class RunIn(_In):
    recipe: JSON = Field(description="The recipe spec to run (its YAML, parsed, as JSON); paths in it are read where "
                                     "the server's scheduler runs")
    reason: str | None = Field(None, max_length=2000)


class TriggerIn(_In):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["schedule", "new_data", "alert", "manual"] = "manual"
    recipe: JSON = Field(description="The recipe spec the trigger runs (its YAML, parsed, as JSON)")
    recipe_path: str | None = Field(None, max_length=4096, description="Where the recipe came from (informational)")
    config: JSON = Field(default_factory=dict, description="cron | dataset, min_new_rows, on_drift | endpoint, "
                                                           "rules, debounce_s")


class FireIn(_In):
    reason: str | None = Field(None, max_length=2000)
    context: JSON | None = None


# ---- lineage and audit ------------------------------------------------------


class LineageNodeOut(_Out):
    key: str
    type: str
    id: str
    label: str
    attrs: JSON


class LineageEdgeOut(_Out):
    src: str
    relation: str
    dst: str


class LineageOut(_Out):
    root: str
    direction: str
    nodes: list[LineageNodeOut]
    edges: list[LineageEdgeOut]


class AuditEventOut(_Out):
    seq: int
    ts: Time
    actor: str
    action: str
    object: str
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None
    reason: str | None
    prev_hash: str
    hash: str


class ChainProblemOut(_Out):
    seq: int
    kind: str
    message: str


class AuditVerifyOut(_Out):
    ok: bool
    problems: list[ChainProblemOut]


# ---- identities -------------------------------------------------------------

Role = Literal["viewer", "data_scientist", "ml_engineer", "approver", "admin"]


class UserOut(_Out):
    name: str
    email: str | None
    active: bool
    roles: dict[str, list[str]]
    created_at: Time
    created_by: str


class UserIn(_In):
    name: str = Field(min_length=1, max_length=128)
    email: str | None = Field(None, max_length=256)
    roles: dict[str, Role | list[Role]] = Field(default_factory=dict, description="{project: role or [roles]}")


class TokenOut(_Out):
    id: str
    user: str
    name: str | None
    status: str
    created_at: Time
    created_by: str
    expires_at: Time
    revoked_at: Time | None
    revoked_by: str | None


class TokenIn(_In):
    name: str | None = Field(None, min_length=1, max_length=128)
    expires_in_days: int = Field(90, ge=1, le=3650)


class TokenCreatedOut(_Out):
    id: str
    user: str
    token: str = Field(description="The secret, shown this once: store it now.")
    expires_at: Time


class IdentityOut(_Out):
    name: str
    roles: dict[str, list[str]]
    token_id: str | None
    local: bool
    project: str
    permissions: list[str]


class HealthOut(_Out):
    status: str
    auth: bool
    project: str
