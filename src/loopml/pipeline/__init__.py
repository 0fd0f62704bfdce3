"""Pure pipeline definitions: ``@step``, ``Pipeline`` (the DAG) and cache policies.

Nothing here touches a store or runs a step; :mod:`loopml.runner` executes.
"""

from loopml.pipeline._cache import (
    DEFAULT,
    ENV,
    INPUTS,
    NONE,
    PARAMS,
    SOURCE,
    CacheContext,
    CachePolicy,
    CompoundPolicy,
    Env,
    Inputs,
    NoCache,
    Params,
    Source,
    canonical_json,
)
from loopml.pipeline._dag import Pipeline
from loopml.pipeline._source import normalised_source, source_hash
from loopml.pipeline._step import CONTEXT_PARAMETER, REQUIRED, Step, step

__all__ = [
    "CONTEXT_PARAMETER",
    "DEFAULT",
    "ENV",
    "INPUTS",
    "NONE",
    "PARAMS",
    "REQUIRED",
    "SOURCE",
    "CacheContext",
    "CachePolicy",
    "CompoundPolicy",
    "Env",
    "Inputs",
    "NoCache",
    "Params",
    "Pipeline",
    "Source",
    "Step",
    "canonical_json",
    "normalised_source",
    "source_hash",
    "step",
]
