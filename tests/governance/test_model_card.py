"""Model cards: Markdown and self-contained HTML with every section, editable fields, no secrets."""

from __future__ import annotations

import re

import pytest
from gov_seed import seed

from loopml.governance.approvals import approve, request_approval
from loopml.governance.model_card import model_card, set_card_fields
from loopml.kernel.exceptions import ValidationError
from loopml.metadata.audit import audit_log

SECTIONS = ["Intended use", "Limitations", "Training data", "Evaluation", "Fairness", "Gates", "Approvals",
            "Deployment history", "Monitoring", "Open alerts"]


def test_card_has_every_section_and_the_edited_fields(workspace) -> None:  # type: ignore[no-untyped-def]
    seed(workspace)
    from loopml.monitor.alerts import raise_alert

    raise_alert(workspace, rule="drift", message="feature a drifted", endpoint="churn-api")
    req = request_approval(workspace, "churn/1", reason="release")
    approve(workspace.as_actor("bob"), req.id, reason="ok")
    card = set_card_fields(workspace.as_actor("ana"), "churn/1", owner="risk-team",
                           intended_use="Monthly churn scoring of retail customers")
    md, html = card.to_markdown(), card.to_html()
    for section in SECTIONS:
        assert section in md and section in html
    assert "risk-team" in md and "Monthly churn scoring" in html
    assert "customers@1" in md and "| `region` | category |" in md  # data and its contract
    assert "Per slice of `region`" in md and "| north | 20 |" in md  # evaluation per slice
    assert "accuracy gap across region" in md  # fairness from the gate report
    assert "approve by bob" in md and "rollout 1 (direct) by mel" in md
    assert "feature a drifted" in md and "no report yet" in md
    assert card.data["fields"]["owner"] == "risk-team"
    assert audit_log(workspace, action="model.update")[0].actor == "ana"


def test_card_is_self_contained_and_holds_no_secret(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    seed(sqlite_workspace)
    card = model_card(sqlite_workspace, "churn@champion")
    html, md = card.to_html(), card.to_markdown()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no CDN, no remote asset
    assert "<style>" in html and "<script" not in html
    for text in (html, md):
        assert "S3CRET" not in text and "pa55w0rd" not in text
        assert "postgresql://etl:***@db.internal/crm" in text


def test_unknown_card_field_is_refused(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    seed(sqlite_workspace, deploy_v1=False)
    with pytest.raises(ValidationError, match="card field 'colour' is unknown; editable fields: owner"):
        set_card_fields(sqlite_workspace, "churn/1", colour="red")
