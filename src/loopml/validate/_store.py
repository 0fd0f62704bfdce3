"""Contracts stored on datasets (``datasets.contract``), and validating stored versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from loopml.ingest import DatasetVersionRecord, get_dataset_version, load_frame
from loopml.kernel.exceptions import NotFoundError
from loopml.kernel.types import check_name
from loopml.metadata._orm import Dataset
from loopml.validate._check import ValidationReport, validate_frame
from loopml.validate._contract import Contract
from loopml.validate._report import detect_issues, render_profile_html

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = ["get_contract", "profile_page", "profile_summary", "set_contract", "validate_dataset"]


def get_contract(ws: Workspace, dataset_name: str) -> Contract:
    """The contract stored on ``dataset_name`` (inferred at its first version unless set).

    Raises:
        NotFoundError: no such dataset, or it has no contract.
    """
    check_name(dataset_name, "dataset")
    with ws.store.read() as session:
        ds = session.execute(select(Dataset).where(Dataset.name == dataset_name)).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset '{dataset_name}' not found")
        if ds.contract is None:
            raise NotFoundError(
                f"dataset '{dataset_name}' has no contract; set one with: loopml data contract {dataset_name} --edit FILE"
            )
        return Contract.from_dict(ds.contract)


def set_contract(ws: Workspace, dataset_name: str, contract: Contract | dict[str, Any], *, reason: str | None = None) -> Contract:
    """Replace the contract of ``dataset_name`` (checked first; audited ``dataset.contract``)."""
    check_name(dataset_name, "dataset")
    parsed = contract if isinstance(contract, Contract) else Contract.from_dict(contract)
    after = parsed.to_dict()
    with ws.store.write(ws.actor) as tx:
        ds = tx.session.execute(select(Dataset).where(Dataset.name == dataset_name).with_for_update()).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset '{dataset_name}' not found")
        before = ds.contract
        ds.contract = after
        tx.audit("dataset.contract", "dataset", dataset_name, before=before, after=after, reason=reason)
    return parsed


def validate_dataset(
    ws: Workspace, ref: str | DatasetVersionRecord, contract: Contract | dict[str, Any] | None = None
) -> ValidationReport:
    """Check a stored version against ``contract`` (default: its dataset's stored contract)."""
    rec = ref if isinstance(ref, DatasetVersionRecord) else get_dataset_version(ws, ref)
    if contract is None:
        contract = get_contract(ws, rec.name)
    return validate_frame(load_frame(ws, rec), contract)


def _contract_or_none(ws: Workspace, name: str) -> Contract | None:
    try:
        return get_contract(ws, name)
    except NotFoundError:
        return None


def profile_summary(ws: Workspace, ref: str) -> dict[str, Any]:
    """A version's profile and the issues found in it (``data profile --json``, local or over HTTP)."""
    rec = get_dataset_version(ws, ref)
    contract = _contract_or_none(ws, rec.name)
    issues = detect_issues(rec.profile, target=contract.target if contract else None)
    return {"ref": rec.ref, "profile": rec.profile, "issues": [i.to_dict() for i in issues]}


def profile_page(ws: Workspace, ref: str) -> tuple[str, str]:
    """``(NAME-vVERSION, html)``: the self-contained HTML profile of a version, checked against its contract."""
    rec = get_dataset_version(ws, ref)
    contract = _contract_or_none(ws, rec.name)
    report = validate_dataset(ws, rec, contract) if contract else None
    return f"{rec.name}-v{rec.version}", render_profile_html(rec, contract=contract, report=report)
