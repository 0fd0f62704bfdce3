"""The model registry: versions, aliases, loading by reference.

A model version is an immutable artifact (sha256 in the artifact store) plus
its signature, reference profile, evaluation and gate report; aliases such as
``champion`` are movable, audited names for versions. See ``README.md``.
"""

from loopml.register._aliases import alias_history, delete_alias, list_aliases, set_alias
from loopml.register._intx import move_alias_in, resolve_in
from loopml.register._loading import clear_model_cache, load_model
from loopml.register._records import (
    AliasChange,
    AliasRecord,
    LoadedModel,
    ModelVersionRecord,
    RegisteredModelRecord,
)
from loopml.register._registry import (
    get_model,
    list_models,
    list_versions,
    register_model,
    resolve,
    update_version,
)

__all__ = [
    "AliasChange",
    "AliasRecord",
    "LoadedModel",
    "ModelVersionRecord",
    "RegisteredModelRecord",
    "alias_history",
    "clear_model_cache",
    "delete_alias",
    "get_model",
    "list_aliases",
    "list_models",
    "list_versions",
    "load_model",
    "move_alias_in",
    "register_model",
    "resolve",
    "resolve_in",
    "set_alias",
    "update_version",
]
