"""The public names of loopml.monitor.drift are exactly its __all__, each defined."""

from __future__ import annotations

import loopml.monitor.drift as drift


def test_all_is_sorted_and_resolves() -> None:
    assert drift.__all__ == sorted(drift.__all__, key=lambda s: (not s.isupper(), s))
    for name in drift.__all__:
        assert getattr(drift, name) is not None


def test_no_private_module_leaks() -> None:
    public = {n for n in dir(drift) if not n.startswith("_")}
    assert public - set(drift.__all__) <= {"annotations"}
