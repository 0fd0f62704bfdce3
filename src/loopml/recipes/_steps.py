"""The seven steps of the continuous-training recipe, as pipeline steps.

ingest → validate_data → split → train → evaluate → validate_model → register

Steps that touch the stores declare a ``context`` parameter; the runner
injects a :class:`~loopml.runner.StepContext` (workspace, run ids). Each
step's cache key covers its inputs, its source and its params, so a re-run
with unchanged data is all cache hits. Whatever depends on the registry's
state (the champion) gets it as a param (``champion``), resolved before the
run, so a moved champion invalidates exactly the steps that compare with it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from loopml.kernel.exceptions import ContractViolation, ValidationError
from loopml.pipeline import DEFAULT, Params, step

if TYPE_CHECKING:  # pandas loads only when a step really runs, not on a cached re-run
    import pandas as pd

__all__ = ["STEPS"]


@step(outputs=("dataset_version",), cache=DEFAULT + Params())
def ingest_data(
    context: Any,
    *,
    dataset: str,
    target: str,
    source: str | None = None,
    sql_url: str | None = None,
    query: str | None = None,
    source_digest: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """A dataset version from the recipe's source (same content → same version), or, with no
    source, the registered ``version`` (resolved before the run, so a newer one misses the cache).

    ``source_digest`` (the file's sha256, computed by the recipe before the run)
    is a param so that an edited file misses the cache and an unchanged one hits.
    """
    from loopml.ingest import get_dataset_version, ingest

    ws = context.workspace
    if source or sql_url:
        record = ingest(ws, sql_url if sql_url else source, dataset, query=query, target=target)
    else:
        record = get_dataset_version(ws, f"{dataset}@{version}")
    context.link(record.lineage_node, "used_by")
    return {"ref": record.ref, "name": record.name, "version": record.version, "digest": record.digest,
            "n_rows": record.n_rows, "new": record.new}


@step(outputs=("data", "validation_report"))
def validate_data(
    context: Any, dataset_version: dict[str, Any], *, target: str, contract_file: str | dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Check the data against its contract; a violation stops the run before training."""
    from loopml.ingest import load_frame
    from loopml.validate import Contract, get_contract, validate_frame

    ws = context.workspace
    ref = dataset_version["ref"]
    df = load_frame(ws, ref)
    if target not in df.columns:
        raise ValidationError(
            f"target column {target!r} is not in dataset {ref}; columns: {', '.join(map(str, df.columns))}",
            field="data.target",
            rule="exists",
        )
    if isinstance(contract_file, dict):  # the contract itself, sent with a remote run
        contract = Contract.from_dict(contract_file)
    elif contract_file:
        from pathlib import Path

        path = Path(contract_file)
        if not path.is_file():
            raise ValidationError(f"data.contract: the contract file {path} does not exist",
                                  field="data.contract", rule="exists")
        contract = Contract.from_yaml(path.read_text())
    else:
        contract = get_contract(ws, dataset_version["name"])
    report = validate_frame(df, contract)
    summary = report.to_dict()
    if not report.ok:
        raise ContractViolation(f"dataset {ref} breaks its contract: {report.summary()}", report=summary)
    return df, summary


@step(outputs=("train", "validation", "test"))
def split(
    data: pd.DataFrame,
    *,
    target: str,
    split_method: str = "stratified",
    test_size: float = 0.2,
    validation_size: float = 0.0,
    seed: int = 0,
    time_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    from loopml.train import split_frame

    parts = split_frame(
        data, method=split_method, target=target, time_column=time_column,
        test_size=test_size, validation_size=validation_size, seed=seed,
    )
    return parts.train, parts.validation, parts.test


@step(outputs=("model", "training"))
def train(
    context: Any,
    train: pd.DataFrame,
    validation: pd.DataFrame | None,
    *,
    target: str,
    estimator: str,
    estimator_params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    preprocess: str = "auto",
    search: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit the estimator; with ``search``, an Optuna search first, each trial a child run."""
    from loopml.train import search as run_search
    from loopml.train import train_model

    feature_list = features or [c for c in train.columns if c != target and c not in (drop or [])]
    params = dict(estimator_params or {})
    info: dict[str, Any] = {"features": feature_list, "params": params}
    if search:
        if validation is None:
            raise ValidationError(
                "train.search needs a validation split: set split.validation_size > 0",
                field="split.validation_size",
                rule="search",
            )

        def on_trial(trial: Any) -> None:
            context.record_trial(trial)

        result = run_search(
            train[[*feature_list, target]], validation[[*feature_list, target]],
            target=target, estimator=estimator, space=search["space"], n_trials=search["n_trials"],
            metric=search["metric"], direction=search["direction"], seed=search.get("seed", 0),
            base_params=params, on_trial=on_trial,
        )
        params = {**params, **result.best_params}
        info.update(best_params=result.best_params, best_value=result.best_value, n_trials=search["n_trials"])
        import pandas as pd

        # Refit on train + validation with the best parameters.
        fit_frame = pd.concat([train, validation], ignore_index=True)
    else:
        fit_frame = train
    trained = train_model(
        fit_frame, target=target, estimator=estimator, params=params, features=feature_list, preprocess=preprocess
    )
    info.update(params=params, task=trained.task)
    context.log_params({f"param.{k}": v for k, v in params.items()})
    return trained.estimator, info


@step(outputs=("evaluation",))
def evaluate(
    model: Any, test: pd.DataFrame, training: dict[str, Any], *, target: str,
    slices: list[str] | None = None, positive_label: Any = None,
) -> dict[str, Any]:
    from loopml.evaluate import evaluate as run_evaluate

    result = run_evaluate(model, test, target=target, task=training["task"], slices=list(slices or []),
                          positive_label=positive_label)
    return result.to_dict()


@step(outputs=("gate_report",))
def validate_model(
    context: Any,
    evaluation: dict[str, Any],
    test: pd.DataFrame,
    training: dict[str, Any],
    *,
    target: str,
    gates: list[Any] | None = None,
    slices: list[str] | None = None,
    positive_label: Any = None,
    champion: str | None = None,
) -> dict[str, Any]:
    """Check the gates; the champion is evaluated on the *same* test data as the candidate."""
    from loopml.evaluate import Evaluation
    from loopml.evaluate import evaluate as run_evaluate
    from loopml.governance import check_gates

    candidate = Evaluation.from_dict(evaluation)
    champion_eval = None
    if champion:
        from loopml.register import load_model

        loaded = load_model(context.workspace, champion)
        champion_eval = run_evaluate(loaded.estimator, test, target=target, task=training["task"],
                                     slices=list(slices or []), positive_label=positive_label)
    report = check_gates(gates or [], candidate, champion_eval)
    out = report.to_dict()
    out["champion"] = champion
    context.log_metrics({"gates_passed": float(report.passed)})
    return out


@step(outputs=("model_version",))
def register(
    context: Any,
    model: Any,
    evaluation: dict[str, Any],
    gate_report: dict[str, Any],
    training: dict[str, Any],
    dataset_version: dict[str, Any],
    train: pd.DataFrame,
    *,
    target: str,
    model_name: str,
    alias_on_pass: str | None = "champion",
    alias_on_fail: str | None = None,
    register_failed: bool = True,
) -> dict[str, Any]:
    """Register the candidate with its signature, reference profile, evaluation and gates."""
    from loopml.monitor.drift import profile_frame
    from loopml.register import register_model
    from loopml.validate import infer_contract

    passed = bool(gate_report.get("passed"))
    if not passed and not register_failed:
        return {"registered": False, "gates_passed": False}
    features = training["features"]
    signature = infer_contract(train[features]).to_dict()
    signature.pop("target", None)
    # Serving rejects what breaks the signature; a value outside the training range
    # is a finding for the monitor (quality, outliers), not a reason to refuse a request.
    for rule in signature["columns"].values():
        rule.pop("min", None)
        rule.pop("max", None)
    aliases = [a for a in ([alias_on_pass] if passed else [alias_on_fail]) if a]
    record = register_model(
        context.workspace, model_name, model,
        signature=signature,
        profile=profile_frame(train[[*features, target]]),
        evaluation=evaluation, gate_report=gate_report, gates_passed=passed,
        run_id=context.pipeline_run_id, dataset_versions=[dataset_version["ref"]],
        task=training["task"], aliases=aliases,
        tags={"target": target, "features": ",".join(features)},
        git_commit=context.git_commit, git_dirty=context.git_dirty, reuse_identical=True,
    )
    return {"registered": True, "name": record.name, "version": record.version, "id": record.id,
            "gates_passed": passed, "aliases": aliases}


STEPS = [ingest_data, validate_data, split, train, evaluate, validate_model, register]


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
