"""The HTML view of a report: one self-contained page (inline SVG and CSS, no script, no CDN).

Clusters are often air-gapped and reports are mailed around, so the page
carries everything it shows: reference-vs-current histograms per feature,
drift over time from earlier reports of the endpoint, and the quality,
performance, segment and health tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["overlay_svg", "render_report", "series_svg", "sparkline_svg"]

_REF = "#9aa5b1"
_CUR = "#1f6feb"
_BAD = "#d1242f"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e6):
            return f"{value:.{digits}e}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if "." in f"{value:.{digits}f}" else f"{value}"
    return str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}%"


def overlay_svg(hist: dict[str, Any] | None, *, width: int = 300, height: int = 110) -> Markup:
    """Reference (grey) and current (blue) shares on shared bins, as bars side by side."""
    if not hist:
        return Markup("")
    ref, cur = hist["reference"], hist["current"]
    k = len(ref)
    top = max([*ref, *cur, 1e-9])
    pad_b = 16
    bw = width / max(k, 1)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" role="img">')]
    for i in range(k):
        for j, (vals, color) in enumerate(((ref, _REF), (cur, _CUR))):
            h = (height - pad_b) * vals[i] / top
            x = i * bw + j * bw * 0.45 + bw * 0.05
            parts.append(f'<rect x="{x:.1f}" y="{height - pad_b - h:.1f}" width="{bw * 0.45:.1f}" height="{h:.1f}" '
                         f'fill="{color}"><title>{"reference" if j == 0 else "current"}: {vals[i]:.3f}</title></rect>')
    if hist.get("type") == "numeric":
        edges = hist["edges"]
        parts.append(f'<text x="0" y="{height - 3}" font-size="10">{escape(_fmt(edges[0], 3))}</text>')
        parts.append(f'<text x="{width}" y="{height - 3}" font-size="10" text-anchor="end">'
                     f'{escape(_fmt(edges[-1], 3))}</text>')
    else:
        for i, cat in enumerate(hist.get("categories", [])):
            label = str(cat)[:8]
            parts.append(f'<text x="{(i + 0.5) * bw:.1f}" y="{height - 3}" font-size="9" text-anchor="middle">'
                         f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def series_svg(points: Sequence[tuple[str, float | None]], *, width: int = 640, height: int = 140,
               threshold: float | None = None, label: str = "") -> Markup:
    """A line over time (x = report order), with an optional threshold line."""
    pts = [(t, v) for t, v in points if v is not None]
    if not pts:
        return Markup("<p class=muted>no earlier reports with this figure</p>")
    top = max([v for _, v in pts] + [threshold or 0.0, 1e-9])
    pad = 24
    n = len(pts)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        return x, height - pad - (height - 2 * pad) * v / top

    coords = [xy(i, v) for i, (_, v) in enumerate(pts)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#ccc"/>']
    if threshold is not None:
        _, ty = xy(0, threshold)
        parts.append(f'<line x1="{pad}" y1="{ty:.1f}" x2="{width - pad}" y2="{ty:.1f}" stroke="{_BAD}" '
                     f'stroke-dasharray="4 3"/>')
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(f'<polyline fill="none" stroke="{_CUR}" stroke-width="2" points="{line}"/>')
    for (x, y), (t, v) in zip(coords, pts, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_CUR}"><title>{escape(t)}: {v:.3f}</title></circle>')
    parts.append(f'<text x="{pad}" y="14" font-size="11">{escape(label)} (max {top:.3f})</text>')
    parts.append(f'<text x="{pad}" y="{height - 6}" font-size="10">{escape(pts[0][0][:16])}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">{escape(pts[-1][0][:16])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline_svg(values: Sequence[float | None], *, width: int = 90, height: int = 22) -> Markup:
    """A tiny line of one feature's drift effect over the recent reports."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return Markup("")
    top = max(max(vals), 1e-9)
    step = width / (len(vals) - 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(vals))
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                  f'<polyline fill="none" stroke="{_CUR}" stroke-width="1.5" points="{pts}"/></svg>')


def _env() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("loopml.monitor", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["pct"] = _pct
    env.globals.update(overlay=overlay_svg, series=series_svg, sparkline=sparkline_svg)
    return env


def render_report(report_row: dict[str, Any], history: Sequence[dict[str, Any]] = ()) -> str:
    """The page of one report (``MonitorReportRecord.to_dict()`` shape) with the endpoint's history.

    ``history``: earlier reports (``id``, ``created_at``, ``summary``), oldest first, ending with this one.
    """
    report = report_row.get("report") or {}
    checks = report.get("checks", {})
    drift = checks.get("data_drift") or {}
    hist_points = [(str(h.get("created_at")), (h.get("summary") or {}).get("drift_share")) for h in history]
    per_report = [(h.get("summary") or {}).get("feature_effects") or {} for h in history]
    columns = dict.fromkeys(col for eff in per_report for col in eff)
    effects = {col: [eff.get(col) for eff in per_report] for col in columns}
    params = {n: c.get("params", {}) for n, c in checks.items()}
    detector = (drift.get("details") or {}).get("detector")
    return str(_env().get_template("report.html.j2").render(
        row=report_row, report=report, checks=checks, summary=report_row.get("summary") or {},
        history_points=hist_points, effects=effects, drift_share_max=(drift.get("params") or {}).get("drift_share"),
        params_json=json.dumps({"checks": params, "drift_detector": detector}, indent=2, default=str),
    ))
