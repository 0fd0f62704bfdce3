"""Charts and the lineage graph as inline SVG, laid out on the server (no chart library).

Every function returns ``markupsafe.Markup`` with all text escaped; colours
come from CSS classes (``s0`` … ``s7``) so the stylesheet owns the palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

__all__ = ["line_chart", "lineage_svg", "stacked_steps"]

W, H = 640, 200
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 10, 24
N_COLORS = 8


def _x_value(x: Any) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def _x_label(x: float, is_time: bool) -> str:
    if is_time:
        return datetime.fromtimestamp(x).strftime("%m-%d %H:%M")
    return f"{x:g}"


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def line_chart(series: Mapping[str, Sequence[tuple[Any, float]]], *, title: str = "", unit: str = "",
               width: int = W, height: int = H) -> Markup:
    """Lines over steps or time, one per series, with min/max labels and a legend."""
    points = {k: [(_x_value(x), float(y)) for x, y in v if y is not None and y == y] for k, v in series.items()}
    points = {k: v for k, v in points.items() if v}
    if not points:
        return Markup('<p class="muted">no data yet</p>')
    is_time = any(isinstance(x, datetime) for v in series.values() for x, _ in v)
    xs = [x for v in points.values() for x, _ in v]
    ys = [y for v in points.values() for _, y in v]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if y0 == y1:
        y0, y1 = y0 - 1, y1 + 1
    sx = _scale(x0, x1, PAD_L, width - PAD_R)
    sy = _scale(y0, y1, height - PAD_B, PAD_T)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{height - PAD_B}" x2="{width - PAD_R}" y2="{height - PAD_B}"/>')
    out.append(f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{height - PAD_B}"/>')
    out.append(f'<text class="tick" x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{y1:.4g}{escape(unit)}</text>')
    out.append(f'<text class="tick" x="{PAD_L - 4}" y="{height - PAD_B}" text-anchor="end">{y0:.4g}{escape(unit)}</text>')
    out.append(f'<text class="tick" x="{PAD_L}" y="{height - 6}">{escape(_x_label(x0, is_time))}</text>')
    out.append(f'<text class="tick" x="{width - PAD_R}" y="{height - 6}" text-anchor="end">'
               f'{escape(_x_label(x1, is_time))}</text>')
    for i, (name, pts) in enumerate(points.items()):
        pts = sorted(pts)
        if len(pts) > 600:  # a chart is 600 px wide: more points only cost bytes
            step = len(pts) / 600
            pts = [pts[int(j * step)] for j in range(600)] + [pts[-1]]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        cls = f"s{i % N_COLORS}"
        out.append(f'<polyline class="line {cls}" points="{path}"><title>{escape(name)}</title></polyline>')
        if len(pts) == 1:
            x, y = pts[0]
            out.append(f'<circle class="dot {cls}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/>')
    out.append("</svg>")
    legend = "".join(f'<span class="key s{i % N_COLORS}">{escape(name)}</span>' for i, name in enumerate(points))
    return Markup("".join(out) + f'<div class="legend">{legend}</div>')


def stacked_steps(changes: Sequence[tuple[datetime, Mapping[str, float]]], *, until: datetime,
                  width: int = W, height: int = H) -> Markup:
    """Traffic split over time: each change holds until the next (a step chart, stacked to 100 %)."""
    if not changes:
        return Markup('<p class="muted">no traffic changes yet</p>')
    keys = list(dict.fromkeys(k for _, weights in changes for k in weights))
    t0 = changes[0][0].timestamp()
    t1 = max(until.timestamp(), changes[-1][0].timestamp() + 1)
    sx = _scale(t0, t1, PAD_L, width - PAD_R)
    sy = _scale(0.0, 1.0, height - PAD_B, PAD_T)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="traffic split over time">']
    for j, (ts, weights) in enumerate(changes):
        xa = sx(ts.timestamp())
        xb = sx(changes[j + 1][0].timestamp()) if j + 1 < len(changes) else sx(t1)
        acc = 0.0
        for i, key in enumerate(keys):
            w = float(weights.get(key, 0.0))
            if w <= 0:
                continue
            ya, yb = sy(acc + w), sy(acc)
            out.append(f'<rect class="area s{i % N_COLORS}" x="{xa:.1f}" y="{ya:.1f}" width="{max(xb - xa, 1):.1f}" '
                       f'height="{max(yb - ya, 0):.1f}"><title>{escape(key)}: {w:.0%} from '
                       f'{escape(ts.isoformat()[:19])}</title></rect>')
            acc += w
    out.append(f'<text class="tick" x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">100%</text>')
    out.append(f'<text class="tick" x="{PAD_L - 4}" y="{height - PAD_B}" text-anchor="end">0%</text>')
    out.append(f'<text class="tick" x="{PAD_L}" y="{height - 6}">{escape(_x_label(t0, True))}</text>')
    out.append(f'<text class="tick" x="{width - PAD_R}" y="{height - 6}" text-anchor="end">now</text>')
    out.append("</svg>")
    legend = "".join(f'<span class="key s{i % N_COLORS}">{escape(k)}</span>' for i, k in enumerate(keys))
    return Markup("".join(out) + f'<div class="legend">{legend}</div>')


NODE_W, NODE_H, COL_GAP, ROW_GAP = 190, 44, 70, 18


def lineage_svg(graph: Mapping[str, Any], *, href: Any, max_nodes: int = 300) -> Markup:
    """The graph in columns by hop distance from the root (upstream left, downstream right).

    ``graph`` is ``LineageGraph.to_dict()``; ``href(key)`` is where clicking a
    node goes (the graph re-rooted there: that is how it expands).
    """
    nodes = {n["key"]: n for n in graph["nodes"][:max_nodes]}
    edges = [(e["src"], e["dst"], e["relation"]) for e in graph["edges"]]
    edges = [(s, d, r) for s, d, r in edges if s in nodes and d in nodes]
    root = graph["root"]
    level: dict[str, int] = {root: 0}
    frontier = [root]
    while frontier:  # BFS: upstream sources get negative columns, downstream targets positive ones
        nxt = []
        for key in frontier:
            for s, d, _ in edges:
                if s == key and d not in level:
                    level[d] = level[key] + 1
                    nxt.append(d)
                elif d == key and s not in level:
                    level[s] = level[key] - 1
                    nxt.append(s)
        frontier = nxt
    for key in nodes:
        level.setdefault(key, 0)
    cols: dict[int, list[str]] = {}
    for key in nodes:
        cols.setdefault(level[key], []).append(key)
    lo = min(cols)
    pos: dict[str, tuple[float, float]] = {}
    for col, keys in cols.items():
        keys.sort(key=lambda k: (nodes[k]["type"], nodes[k]["label"]))
        for row, key in enumerate(keys):
            pos[key] = (10 + (col - lo) * (NODE_W + COL_GAP), 10 + row * (NODE_H + ROW_GAP))
    width = 20 + (max(cols) - lo + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = 20 + max(len(v) for v in cols.values()) * (NODE_H + ROW_GAP) - ROW_GAP
    out = [f'<svg class="lineage" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="lineage graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>']
    for s, d, rel in edges:
        (xs, ys), (xd, yd) = pos[s], pos[d]
        x1, y1, x2, y2 = xs + NODE_W, ys + NODE_H / 2, xd, yd + NODE_H / 2
        if xd <= xs:  # same column or backwards: leave from the bottom
            x1, y1, x2, y2 = xs + NODE_W / 2, ys + NODE_H, xd + NODE_W / 2, yd
        mx = (x1 + x2) / 2
        out.append(f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mx:.0f},{y1:.0f} {mx:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
                   f'marker-end="url(#arrow)"><title>{escape(rel)}</title></path>')
    for key, node in nodes.items():
        x, y = pos[key]
        cls = "node root" if key == root else "node"
        label = node["label"] if len(node["label"]) <= 26 else node["label"][:25] + "…"
        out.append(f'<a class="{cls} t-{escape(node["type"])}" href="{escape(href(key))}" data-key="{escape(key)}">'
                   f'<title>{escape(key)}</title>'
                   f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                   f'<text class="ntype" x="{x + 8}" y="{y + 16}">{escape(node["type"])}</text>'
                   f'<text class="nlabel" x="{x + 8}" y="{y + 34}">{escape(label)}</text></a>')
    out.append("</svg>")
    return Markup("".join(out))
