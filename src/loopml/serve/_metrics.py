"""A small Prometheus registry: counters, gauges, histograms, text format 0.0.4.

Why not ``prometheus_client``: the hot path needs a dict increment, not a lock
and a label lookup per observation, and serving should add no dependency.
Everything here is touched from the event loop only (single-threaded), except
gauges read through callbacks at scrape time.
"""

from __future__ import annotations

import os
import resource
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence

__all__ = ["Counter", "CounterFunc", "Gauge", "Histogram", "Registry"]

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Counter:
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, labels: LabelValues = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in self.values.items()]


class Gauge(Counter):
    """A value that goes up and down; ``callback`` computes it at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        callback: Callable[[], dict[LabelValues, float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.callback = callback

    def set(self, labels: LabelValues, value: float) -> None:
        self.values[labels] = value

    def render(self) -> list[str]:
        if self.callback is not None:
            self.values = self.callback()
        return super().render()


class CounterFunc(Gauge):
    """A counter kept by someone else (e.g. the batcher's dropped shadow copies), read at scrape time."""

    kind = "counter"


class Histogram:
    """Cumulative buckets per label set, plus ``_sum`` and ``_count``."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self.series: dict[LabelValues, list[float]] = {}  # per-bucket counts, then sum, then count

    def observe(self, labels: LabelValues, value: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0.0] * (len(self.buckets) + 3)
        series[bisect_left(self.buckets, value)] += 1  # index len(buckets) is +Inf
        series[-2] += value
        series[-1] += 1

    def render(self) -> list[str]:
        lines = []
        for key, series in self.series.items():
            running = 0.0
            for i, bound in enumerate((*self.buckets, float("inf"))):
                running += series[i]
                le = 'le="' + _num(float(bound)) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_num(running)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_num(series[-2])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_num(series[-1])}")
        return lines


class Registry:
    """The metrics of one server process, rendered as Prometheus text."""

    def __init__(self) -> None:
        self.metrics: list[Counter | Histogram] = []
        self._start = time.time()

    def add(self, metric: Counter | Histogram) -> Counter | Histogram:
        self.metrics.append(metric)
        return metric

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in self.metrics:
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.render())
        lines.extend(self._process_lines())
        return ("\n".join(lines) + "\n").encode()

    def _process_lines(self) -> list[str]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        rss = _rss_bytes() or usage.ru_maxrss * 1024
        return [
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {cpu!r}",
            "# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge",
            f"process_resident_memory_bytes {rss}",
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self._start!r}",
        ]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
