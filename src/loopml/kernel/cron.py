"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Supports ``*``, lists ``a,b``, ranges ``a-b``, steps ``*/n`` and ``a-b/n``,
month and weekday names, and the shortcuts ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``, ``@yearly``. Day-of-month and day-of-week combine
as in Vixie cron: when both are restricted, either may match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loopml.kernel.exceptions import ValidationError

__all__ = ["Cron"]

_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))


def _parse_field(text: str, name: str, lo: int, hi: int, names: dict[str, int], expr: str) -> frozenset[int]:
    values: set[int] = set()

    def number(tok: str) -> int:
        tok = tok.lower()
        if tok in names:
            return names[tok]
        if not tok.isdigit():
            raise ValidationError(f"cron {expr!r}: {name} value {tok!r} is not a number", field="schedule", rule="cron")
        n = int(tok)
        if not lo <= n <= hi:
            raise ValidationError(f"cron {expr!r}: {name} value {n} is outside {lo}-{hi}", field="schedule", rule="cron")
        return n

    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValidationError(f"cron {expr!r}: {name} step {step_text!r} must be a positive integer", field="schedule", rule="cron")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = number(a), number(b)
            if start > end:
                raise ValidationError(f"cron {expr!r}: {name} range {part} is backwards", field="schedule", rule="cron")
        else:
            start = number(part)
            end = hi if "/" in text else start
        values.update(range(start, end + 1, step))
    if name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; :meth:`next_after` gives the next firing time."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_any: bool
    dow_any: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        text = _SHORTCUTS.get(expr.strip().lower(), expr.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ValidationError(
                f"cron {expr!r} must have 5 fields (minute hour day-of-month month day-of-week) "
                f"or be one of {', '.join(_SHORTCUTS)}; got {len(parts)} fields",
                field="schedule", rule="cron",
            )
        sets = [_parse_field(p, n, lo, hi, names, expr) for p, (n, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        return cls(expr, *sets, dom_any=parts[2] == "*", dow_any=parts[4] == "*")

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_any or self.dow_any:
            return dom and dow
        return dom or dow

    def matches(self, t: datetime) -> bool:
        return (
            t.month in self.months and self._day_matches(t)
            and t.hour in self.hours and t.minute in self.minutes
        )

    def next_after(self, t: datetime) -> datetime:
        """The first matching minute strictly after ``t`` (searches up to 5 years)."""
        cur = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = cur + timedelta(days=366 * 5)
        while cur < limit:
            if cur.month not in self.months:
                cur = (cur.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(cur):
                cur = cur.replace(hour=0, minute=0) + timedelta(days=1)
            elif cur.hour not in self.hours:
                cur = cur.replace(minute=0) + timedelta(hours=1)
            elif cur.minute not in self.minutes:
                cur += timedelta(minutes=1)
            else:
                return cur
        raise ValidationError(f"cron {self.expr!r} never fires", field="schedule", rule="cron")
