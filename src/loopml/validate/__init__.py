"""Data contracts: infer, edit as YAML, store on datasets, validate frames -> reports.

    >>> contract = infer_contract(df, target="rain_tomorrow")
    >>> report = validate_frame(request_df, contract.features())
"""

from loopml.validate._check import RuleFailure, ValidationReport, validate_frame
from loopml.validate._contract import CONTRACT_TYPES, UNSEEN_POLICIES, ColumnRule, Contract, infer_contract
from loopml.validate._report import Issue, detect_issues, render_profile_html
from loopml.validate._store import get_contract, profile_page, profile_summary, set_contract, validate_dataset

__all__ = [
    "CONTRACT_TYPES",
    "UNSEEN_POLICIES",
    "ColumnRule",
    "Contract",
    "Issue",
    "RuleFailure",
    "ValidationReport",
    "detect_issues",
    "get_contract",
    "infer_contract",
    "profile_page",
    "profile_summary",
    "render_profile_html",
    "set_contract",
    "validate_dataset",
    "validate_frame",
]
