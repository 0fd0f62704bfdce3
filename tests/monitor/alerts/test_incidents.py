from __future__ import annotations

from datetime import timedelta

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.monitor.alerts import ack_alert, list_alerts, raise_alert, resolve_alerts


def test_repeated_firings_fold_into_one_incident(workspace) -> None:
    first = raise_alert(workspace, rule="data_drift", endpoint="churn", message="3 features drifted")
    again = raise_alert(workspace, rule="data_drift", endpoint="churn", message="4 features drifted")
    assert first.opened and not again.opened
    assert again.id == first.id and again.count == 2 and again.message == "4 features drifted"
    assert len(list_alerts(workspace, status="open")) == 1


def test_cooldown_reopens_silently_then_pages_again_after_it(workspace) -> None:
    t0 = utcnow()
    a = raise_alert(workspace, rule="latency", endpoint="e", message="slow", cooldown_s=600, now=t0)
    resolve_alerts(workspace, a.dedup_key, now=t0 + timedelta(seconds=10))
    flap = raise_alert(workspace, rule="latency", endpoint="e", message="slow", cooldown_s=600, now=t0 + timedelta(seconds=60))
    assert flap.id == a.id and not flap.opened and flap.status == "open"
    resolve_alerts(workspace, a.dedup_key, now=t0 + timedelta(seconds=70))
    later = raise_alert(workspace, rule="latency", endpoint="e", message="slow", cooldown_s=600, now=t0 + timedelta(hours=2))
    assert later.opened and later.id != a.id


def test_ack_is_audited_and_needs_an_existing_open_alert(workspace) -> None:
    a = raise_alert(workspace, rule="error_rate", endpoint="e", message="5% errors", severity="critical")
    acked = ack_alert(workspace, a.id, note="looking")
    assert acked.status == "acknowledged" and acked.acked_by == "tester"
    with pytest.raises(NotFoundError, match="alert 999 does not exist"):
        ack_alert(workspace, 999)
    resolve_alerts(workspace, a.dedup_key)
    with pytest.raises(ValidationError, match="already resolved"):
        ack_alert(workspace, a.id)
    from loopml.metadata._orm import AuditEvent
    from sqlalchemy import select

    with workspace.store.read() as s:
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert actions[-3:] == ["alert.open", "alert.ack", "alert.resolve"]


def test_bad_severity_and_channel_are_rejected(workspace) -> None:
    with pytest.raises(ValidationError, match="severity 'loud' is unknown; allowed: info, warning, critical"):
        raise_alert(workspace, rule="r", message="m", severity="loud")
    with pytest.raises(ValidationError, match="notifier type 'pager' is unknown"):
        raise_alert(workspace, rule="r", message="m", channels=[{"type": "pager"}])
    assert list_alerts(workspace) == []
