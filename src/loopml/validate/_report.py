"""Common data issues found in a profile, and the self-contained HTML profile report.

The report is one HTML file: inline CSS and inline SVG bars, no script, no
font or stylesheet from the network (clusters are often air-gapped).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from loopml.ingest import DatasetVersionRecord
from loopml.validate._check import ValidationReport
from loopml.validate._contract import Contract

__all__ = ["Issue", "detect_issues", "render_profile_html"]

MISSING_WARN = 0.05
IMBALANCE_WARN = 0.10
OUTLIER_WARN = 0.05
SKEW_WARN = 2.0


@dataclass(frozen=True)
class Issue:
    """A likely problem with the data: which column, what kind, how bad."""

    kind: str
    severity: str  # warning | info
    column: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_issues(profile: dict[str, Any], *, target: str | None = None) -> list[Issue]:
    """Missing values, constant / ID-like columns, duplicates, outliers, skew, target imbalance."""
    issues: list[Issue] = []
    n_rows = int(profile.get("n_rows", 0))
    dup = int(profile.get("n_duplicate_rows", 0))
    if dup:
        issues.append(Issue("duplicates", "warning", None, f"{dup} duplicate row(s) ({dup / n_rows:.1%} of {n_rows})"))
    for name, col in profile.get("columns", {}).items():
        rate = float(col.get("missing_rate", 0.0))
        if rate >= 1.0:
            issues.append(Issue("all_missing", "warning", name, f"'{name}' is entirely missing"))
            continue
        if rate > MISSING_WARN:
            issues.append(Issue("missing", "warning", name, f"'{name}' has {rate:.1%} missing values"))
        elif rate > 0:
            issues.append(Issue("missing", "info", name, f"'{name}' has {rate:.2%} missing values"))
        if col.get("n_unique", 0) == 1:
            issues.append(Issue("constant", "warning", name, f"'{name}' has a single value: it carries no information"))
        if col["type"] in ("string", "int") and n_rows > 1 and col.get("n_unique") == n_rows and name != target:
            issues.append(Issue("id_like", "info", name, f"'{name}' is unique on every row: an ID, not a feature?"))
        elif col["type"] == "string" and col.get("unique_rate", 0) > 0.5 and col.get("n_unique", 0) > 50:
            issues.append(Issue("high_cardinality", "warning", name,
                                f"'{name}' has {col['n_unique']} distinct values ({col['unique_rate']:.0%} of rows)"))
        out = col.get("outliers")
        if out and out.get("rate", 0) > OUTLIER_WARN:
            issues.append(Issue("outliers", "warning", name,
                                f"'{name}' has {out['rate']:.1%} values outside the IQR fences [{out['lower']:.4g}, {out['upper']:.4g}]"))
        if col.get("n_inf"):
            issues.append(Issue("infinite", "warning", name, f"'{name}' has {col['n_inf']} infinite value(s)"))
        skew = col.get("skew")
        if skew is not None and abs(skew) > SKEW_WARN and col.get("n_unique", 0) > 2:
            issues.append(Issue("skewed", "info", name, f"'{name}' is strongly skewed (skewness {skew:.1f})"))
    if target is not None:
        col = profile.get("columns", {}).get(target)
        if col is None:
            issues.append(Issue("missing_target", "warning", target, f"target '{target}' is not a column of the data"))
        else:
            top = col.get("top")
            if top and len(top["counts"]) >= 2 and top.get("other_count", 0) == 0:
                share = min(top["counts"]) / max(1, sum(top["counts"]))
                if share < IMBALANCE_WARN:
                    minority = top["values"][top["counts"].index(min(top["counts"]))]
                    issues.append(Issue("class_imbalance", "warning", target,
                                        f"target '{target}' is imbalanced: class {minority!r} is {share:.1%} of rows"))
            if col.get("n_missing"):
                issues.append(Issue("target_missing", "warning", target, f"target '{target}' has {col['n_missing']} missing value(s)"))
    order = {"warning": 0, "info": 1}
    return sorted(issues, key=lambda i: order.get(i.severity, 2))


@lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("loopml.validate", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "" if v is None else f"{float(v):.1%}"
    return env.get_template("profile.html.j2")


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"


def _bars(col: dict[str, Any]) -> list[dict[str, Any]]:
    """Bars for the column chart: density per equal-mass bin, or category shares."""
    hist = col.get("histogram")
    if hist and col.get("top") is None:
        edges, counts = hist["edges"], hist["counts"]
        dens = []
        for i, c in enumerate(counts):
            width = (edges[i + 1] or 0) - (edges[i] or 0)
            dens.append(c / width if width > 0 else float(c))
        peak = max(dens) or 1.0
        return [{"label": f"[{_num(edges[i])}, {_num(edges[i + 1])}]", "count": c, "h": d / peak}
                for i, (c, d) in enumerate(zip(counts, dens, strict=True))]
    top = col.get("top")
    if not top:
        return []
    peak = max(top["counts"] or [1])
    bars = [{"label": str(v), "count": c, "h": c / peak} for v, c in zip(top["values"][:20], top["counts"][:20], strict=True)]
    rest = top.get("other_count", 0) + sum(top["counts"][20:])
    if rest:
        bars.append({"label": "(other)", "count": rest, "h": min(1.0, rest / peak)})
    return bars


def render_profile_html(
    record: DatasetVersionRecord, *, contract: Contract | None = None, report: ValidationReport | None = None
) -> str:
    """One self-contained HTML page: warnings first, then the dataset, then each column."""
    profile = record.profile
    target = contract.target if contract else None
    issues = detect_issues(profile, target=target)
    columns = []
    for name, col in profile["columns"].items():
        columns.append({
            "name": name, "p": col, "bars": _bars(col),
            "issues": [i for i in issues if i.column == name],
            "rule": contract.columns[name].to_dict() if contract and name in contract.columns else None,
        })
    target_col = profile["columns"].get(target) if target else None
    return _template().render(
        rec=record, profile=profile, issues=issues, columns=columns, contract=contract, report=report,
        target=target, target_bars=_bars(target_col) if target_col else [],
        n_warnings=sum(1 for i in issues if i.severity == "warning"),
        missing=[(c["name"], c["p"].get("missing_rate", 0.0), c["p"].get("n_missing", 0)) for c in columns],
        outliers=[(c["name"], c["p"]["outliers"]) for c in columns if c["p"].get("outliers")],
    )
