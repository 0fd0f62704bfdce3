"""One exception tree for all of loopml.

Every error a user can see derives from :class:`LoopmlError`. Each package has
a branch; "not found" errors are also :class:`LookupError` and "already
exists" errors also :class:`ValueError`, so generic handlers keep working.
Foreign errors (SQLAlchemy, fsspec, pyarrow, ...) are translated at the
boundary of the package that calls them; none escapes a store package.

    LoopmlError
    ├── ConfigError                      bad settings or workspace layout
    ├── MissingExtraError (ImportError)  optional dependency not installed
    ├── ValidationError (ValueError)     bad user input: names field, rule, value
    │   └── SpecError                    invalid YAML/Python pipeline spec
    ├── NotFoundError (LookupError)      unknown object (dataset, run, model, alias ...)
    ├── AlreadyExistsError (ValueError)  a unique name or key is taken
    ├── StoreError                       metadata store failure (DB unreachable, migration)
    │   └── ConcurrencyError             a write lost a race it could not retry
    ├── ArtifactError                    artifact store failure
    │   └── IntegrityError               stored bytes do not match their hash
    ├── AuditChainError                  the audit hash chain is broken
    ├── DataError                        dataset ingestion / reading failed
    │   └── ContractViolation            data breaks its contract (carries the report)
    ├── PipelineError                    a pipeline could not be built or run
    │   └── StepFailed                   a step raised (carries step name + traceback)
    ├── TrainingError                    training / search failed
    ├── GateFailed                       a candidate failed a validation gate
    ├── RegistryError                    model registry misuse (bad ref, unloadable model)
    ├── ServingError                     a serving endpoint failed
    │   ├── BadRequest (ValidationError) an inference request is invalid (HTTP 4xx)
    │   └── Overloaded                   the queue is full (HTTP 503)
    ├── DeploymentError                  a deployment / rollout could not proceed
    ├── MonitorError                     a monitor could not run
    ├── NotifierError                    an alert notifier failed
    ├── TriggerError                     a trigger could not fire
    └── PermissionDenied (PermissionError) the actor lacks the role or approval
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ArtifactError",
    "AuditChainError",
    "BadRequest",
    "ConcurrencyError",
    "ConfigError",
    "ContractViolation",
    "DataError",
    "DeploymentError",
    "GateFailed",
    "IntegrityError",
    "LoopmlError",
    "MissingExtraError",
    "MonitorError",
    "NotFoundError",
    "NotifierError",
    "Overloaded",
    "PermissionDenied",
    "PipelineError",
    "RegistryError",
    "ServingError",
    "SpecError",
    "StepFailed",
    "StoreError",
    "TrainingError",
    "TriggerError",
    "ValidationError",
]


class LoopmlError(Exception):
    """Root of every loopml error."""


class ConfigError(LoopmlError):
    """Settings or the workspace layout are invalid."""


class MissingExtraError(LoopmlError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'loopml[{extra}]'"
        )
        self.module = module
        self.extra = extra


class ValidationError(LoopmlError, ValueError):
    """User input breaks a rule. ``field`` and ``rule`` say which and why."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field, "rule": self.rule}


class SpecError(ValidationError):
    """A pipeline or recipe spec is invalid (names the key and the allowed values)."""


class NotFoundError(LoopmlError, LookupError):
    """An object the caller named does not exist."""

    def __str__(self) -> str:  # LookupError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(LoopmlError, ValueError):
    """A unique name or key is already taken."""


class StoreError(LoopmlError):
    """The metadata store failed (unreachable, corrupt, or not migrated)."""


class ConcurrencyError(StoreError):
    """A write lost a race with another writer and could not be retried."""


class ArtifactError(LoopmlError):
    """The artifact store failed."""


class IntegrityError(ArtifactError):
    """Stored bytes do not match the digest they are addressed by."""


class AuditChainError(LoopmlError):
    """The audit log's hash chain is broken."""


class DataError(LoopmlError):
    """A dataset could not be read, written or ingested."""


class ContractViolation(DataError):
    """Data breaks its contract; ``report`` lists every failed rule."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class PipelineError(LoopmlError):
    """A pipeline could not be built or run."""


class StepFailed(PipelineError):
    """A pipeline step raised; carries the step name and the formatted traceback."""

    def __init__(self, step: str, cause: BaseException, traceback_text: str = "") -> None:
        super().__init__(f"step '{step}' failed: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause
        self.traceback_text = traceback_text


class TrainingError(LoopmlError):
    """Training or hyper-parameter search failed."""


class GateFailed(LoopmlError):
    """A candidate model failed one or more validation gates."""

    def __init__(self, message: str, failures: list[Any] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class RegistryError(LoopmlError):
    """The model registry was misused (bad reference, unloadable artifact)."""


class ServingError(LoopmlError):
    """A serving endpoint failed."""


class BadRequest(ServingError, ValidationError):
    """An inference request is invalid; served as HTTP 4xx with a JSON body."""

    def __init__(
        self, message: str, *, field: str | None = None, rule: str | None = None, status: int = 400
    ) -> None:
        ValidationError.__init__(self, message, field=field, rule=rule)
        self.status = status


class Overloaded(ServingError):
    """The serving queue is full; served as HTTP 503 with Retry-After."""


class DeploymentError(LoopmlError):
    """A deployment or rollout could not proceed."""


class MonitorError(LoopmlError):
    """A monitor could not run."""


class NotifierError(LoopmlError):
    """An alert notifier failed to deliver."""


class TriggerError(LoopmlError):
    """A trigger could not fire."""


class PermissionDenied(LoopmlError, PermissionError):
    """The actor lacks the role, or the action needs approvals it does not have."""
