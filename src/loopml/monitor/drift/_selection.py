"""Which test a column gets, and the corrections across columns: loopml's documented rules.

Automatic choice (``method="auto"``), by column type and sample size:

=============================================  ============================  =================
column                                         test                          effect size
=============================================  ============================  =================
boolean, or <= 2 distinct values (ref + cur)   z (two proportions)           Jensen-Shannon
categorical                                    chisquare (2 x K homogeneity)  Jensen-Shannon
numeric, reference fits the sample (<= 5000)   ks (exact on the whole ref)   Wasserstein/std
numeric, larger reference                      chisquare on <= 20 reference-  Wasserstein/std
                                               quantile cells (full counts)
=============================================  ============================  =================

A feature drifts when its p-value, corrected across features
(Benjamini-Hochberg by default), is below ``alpha`` AND its effect is at
least ``min_effect`` (0.02 by default): significance keeps small windows
from raising false alarms, the effect floor keeps huge windows from flagging
differences nobody cares about. Why chi-square on quantile cells for large
references: it uses the reference's full counts (a KS on a 5000-row sample
would lose the power that a 100k-row reference gives), and the cells adapt
(about 10 rows per cell) when a window is small.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from loopml.kernel.exceptions import ValidationError
from loopml.monitor.drift._refprofile import ColumnReference
from loopml.monitor.drift._stattests import TESTS, distinct_values
from loopml.monitor.drift._window import ColumnWindow

__all__ = ["CORRECTIONS", "METHODS", "adjust_pvalues", "auto_method", "check_method"]

#: Accepted values of ``method``.
METHODS = ("auto", "evidently", *TESTS)
#: Accepted values of ``correction``.
CORRECTIONS = ("bh", "holm", "bonferroni", "none")


def auto_method(ref: ColumnReference, win: ColumnWindow) -> str:
    """loopml's default test for a column (the table in the module docstring)."""
    if ref.type == "boolean":
        return "z"
    if ref.type == "categorical":
        if ref.other_count == 0 and distinct_values(ref, win, 2) <= 2:
            return "z"
        return "chisquare"
    if distinct_values(ref, win, 2) <= 2:
        return "z"
    return "ks" if ref.sample_complete else "chisquare"


def check_method(method: object, field: str = "method") -> str:
    """Return ``method`` if it names a known method, else raise listing the allowed ones."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValidationError(
            f"unknown drift method {method!r} for {field}; allowed: {', '.join(METHODS)}",
            field=field, rule="allowed_values",
        )
    return method


def check_methods(method: object) -> str | dict[str, str]:
    """Validate ``method``: one name, or a mapping column -> name (never 'evidently' per column)."""
    if isinstance(method, Mapping):
        out = {}
        for col, m in method.items():
            name = check_method(m, field=f"method['{col}']")
            if name == "evidently":
                raise ValidationError(
                    f"method['{col}'] cannot be 'evidently'; the Evidently mode applies to a whole detector",
                    field=f"method['{col}']", rule="allowed_values",
                )
            out[str(col)] = name
        return out
    return check_method(method)


def adjust_pvalues(p: np.ndarray, correction: str) -> np.ndarray:
    """Adjusted p-values: Benjamini-Hochberg (FDR), Holm or Bonferroni (FWER), or none."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0 or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if correction == "bh":
        adj = ps * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
    elif correction == "holm":
        adj = np.maximum.accumulate(ps * (m - np.arange(m)))
    else:
        raise ValidationError(
            f"unknown correction {correction!r}; allowed: {', '.join(CORRECTIONS)}",
            field="correction", rule="allowed_values",
        )
    out = np.empty(m)
    out[order] = np.minimum(1.0, adj)
    return out
