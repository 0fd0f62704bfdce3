"""Keep secrets out of what governance shows: cards, traces, exports.

``scrub`` masks values under secret-looking keys (as the audit log does) and
the password of any ``scheme://user:password@host`` URL or ``password=...``
parameter inside any string, recursively.
"""

from __future__ import annotations

import re
from typing import Any

from loopml.metadata.audit import redact

__all__ = ["scrub", "scrub_text"]

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)")
_KV_PASSWORD = re.compile(r"(?i)(?P<key>(?:password|passwd|pwd|secret|token|api_key)\s*[=:]\s*)(?P<val>[^\s&;,'\"]+)")
_TOKEN = re.compile(r"lml_[A-Za-z0-9]+_[A-Za-z0-9_\-]+")


def scrub_text(text: str) -> str:
    """``text`` with URL passwords, ``password=`` values and API token secrets masked."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + "***" + m.group("at"), text)
    text = _KV_PASSWORD.sub(lambda m: m.group("key") + "***", text)
    return _TOKEN.sub("lml_***", text)


def scrub(value: Any) -> Any:
    """``value`` (dicts, lists, strings) with every secret masked."""
    value = redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value
