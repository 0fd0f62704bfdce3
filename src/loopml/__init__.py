"""loopml: the whole machine-learning lifecycle in a closed loop.

``import loopml`` is cheap: it imports no database engine, web framework or ML
library. The names below resolve lazily to their homes on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.kernel.lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> module that defines it
_HOMES: dict[str, str] = {
    # workspace
    "Workspace": "loopml.workspace",
    "init_workspace": "loopml.workspace",
    "open_workspace": "loopml.workspace",
    # data
    "ingest": "loopml.ingest",
    "load_frame": "loopml.ingest",
    "Contract": "loopml.validate",
    "infer_contract": "loopml.validate",
    "validate_frame": "loopml.validate",
    # pipelines and tracking
    "step": "loopml.pipeline",
    "Pipeline": "loopml.pipeline",
    "run_pipeline": "loopml.runner",
    "start_run": "loopml.tracking",
    "get_run": "loopml.tracking",
    "list_runs": "loopml.tracking",
    # models
    "register_model": "loopml.register",
    "load_model": "loopml.register",
    "set_alias": "loopml.register",
    "evaluate": "loopml.evaluate",
    "check_gates": "loopml.governance",
    "run_recipe": "loopml.recipes",
    # values and errors
    "ModelRef": "loopml.kernel.types",
    "LoopmlError": "loopml.kernel.exceptions",
}

__all__ = sorted([*_HOMES, "__version__"])


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, also=["__version__"])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from loopml.evaluate import evaluate
    from loopml.governance import check_gates
    from loopml.ingest import ingest, load_frame
    from loopml.kernel.exceptions import LoopmlError
    from loopml.kernel.types import ModelRef
    from loopml.pipeline import Pipeline, step
    from loopml.recipes import run_recipe
    from loopml.register import load_model, register_model, set_alias
    from loopml.runner import run_pipeline
    from loopml.tracking import get_run, list_runs, start_run
    from loopml.validate import Contract, infer_contract, validate_frame
    from loopml.workspace import Workspace, init_workspace, open_workspace
