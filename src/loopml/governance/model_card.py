"""Model cards: one version's compliance report, as Markdown or self-contained HTML.

    set_card_fields(ws, "churn/3", owner="risk-team", intended_use="monthly churn scoring")
    card = model_card(ws, "churn/3")
    card.to_markdown(); card.to_html()               # no CDN: styles inline

A card gathers: the editable fields (owner, intended use, limitations; kept
as ``card.*`` tags on the version, edited through ``update_version`` so every
edit is an audited ``model.update``), the training data with its contract,
the evaluation overall and per slice, fairness results and every gate rule,
the approvals, the deployment history (traffic changes and rollouts that gave
the version traffic), the latest monitor report per endpoint and its open
alerts. Everything shown passes :func:`loopml.governance._redact.scrub`:
dataset sources with credentials, tokens or notifier passwords never appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from loopml.governance._redact import scrub
from loopml.governance.trace import _datasets, approvals_of
from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import ModelRef, utcnow
from loopml.metadata._orm import Dataset, Endpoint, Rollout, TrafficChange

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = ["CARD_FIELDS", "ModelCard", "model_card", "set_card_fields"]

#: The editable fields and their tag names on the version.
CARD_FIELDS = ("owner", "intended_use", "limitations")
_MAX_FIELD = 10_000


@dataclass(frozen=True)
class ModelCard:
    """The data of one version's card; render with :meth:`to_markdown` or :meth:`to_html`."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def _render(self, template: str) -> str:
        from jinja2 import Environment, PackageLoader, select_autoescape

        env = Environment(loader=PackageLoader("loopml.governance", "templates"),
                          autoescape=select_autoescape(["html"], default_for_string=False, default=False),
                          trim_blocks=True, lstrip_blocks=True)
        env.filters["fmt"] = _fmt
        return env.get_template(template).render(card=self.data)

    def to_markdown(self) -> str:
        return self._render("model_card.md.j2")

    def to_html(self) -> str:
        return self._render("model_card.html")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def set_card_fields(ws: Workspace, ref: str, *, reason: str | None = None, **fields: str | None) -> ModelCard:
    """Edit a version's card fields (``owner``, ``intended_use``, ``limitations``); ``None`` clears one.

    Raises:
        ValidationError: an unknown field or an overlong value.
    """
    from loopml.register import resolve, update_version

    unknown = sorted(set(fields) - set(CARD_FIELDS))
    if unknown:
        raise ValidationError(f"card field {unknown[0]!r} is unknown; editable fields: {', '.join(CARD_FIELDS)}",
                              field=unknown[0], rule="enum")
    for key, value in fields.items():
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_FIELD):
            raise ValidationError(f"card field {key!r} must be text of at most {_MAX_FIELD} characters",
                                  field=key, rule="max_length")
    record = resolve(ws, ref)
    update_version(ws, record.name, record.version, tags={f"card.{k}": v for k, v in fields.items()},
                   reason=reason or "model card edited")
    return model_card(ws, record.ref)


def _deployments(ws: Workspace, model: str, version: int) -> list[dict[str, Any]]:
    out = []
    with ws.store.read() as s:
        endpoints = s.execute(select(Endpoint).where(Endpoint.model_name == model).order_by(Endpoint.name)).scalars().all()
        for ep in endpoints:
            changes = s.execute(select(TrafficChange).where(TrafficChange.endpoint_id == ep.id)
                                .order_by(TrafficChange.revision)).scalars().all()
            history = []
            for c in changes:
                weight = sum(float(r.get("weight", 0)) for r in (c.policy or {}).get("routes", [])
                             if r.get("version") == version)
                history.append({"revision": c.revision, "ts": c.ts.isoformat(), "actor": c.actor,
                                "reason": c.reason, "rollout_id": c.rollout_id, "weight": weight})
            rollouts = s.execute(select(Rollout).where(Rollout.endpoint_id == ep.id, Rollout.candidate_version == version)
                                 .order_by(Rollout.id)).scalars().all()
            mine = [h for i, h in enumerate(history)
                    if h["weight"] > 0 or (i > 0 and history[i - 1]["weight"] > 0)]
            if mine or rollouts:
                current = history[-1]["weight"] if history else 0.0
                out.append({"endpoint": ep.name, "current_weight": current, "traffic": mine,
                            "rollouts": [{"id": r.id, "strategy": r.strategy, "status": r.status,
                                          "created_by": r.created_by, "created_at": r.created_at.isoformat(),
                                          "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                                          "override_reason": r.override_reason} for r in rollouts]})
    return out


def _monitoring(ws: Workspace, endpoints: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from loopml.monitor import list_reports
    from loopml.monitor.alerts import list_alerts

    reports, alerts = [], []
    for ep in endpoints:
        latest = list_reports(ws, ep, limit=1)
        if latest:
            r = latest[0]
            reports.append({"endpoint": ep, "report_id": r.id, "status": r.status, "n_rows": r.n_rows,
                            "created_at": r.created_at.isoformat(), "summary": r.summary})
        else:
            reports.append({"endpoint": ep, "report_id": None, "status": "no report yet"})
        for a in list_alerts(ws, status="open", endpoint=ep) + list_alerts(ws, status="acknowledged", endpoint=ep):
            alerts.append({"id": a.id, "endpoint": ep, "rule": a.rule, "severity": a.severity, "status": a.status,
                           "message": a.message, "count": a.count, "last_seen": a.last_seen.isoformat()})
    return reports, alerts


def _contracts(ws: Workspace, refs: list[str]) -> dict[str, Any]:
    names = {r.partition("@")[0] for r in refs}
    if not names:
        return {}
    with ws.store.read() as s:
        return {n: c for n, c in s.execute(select(Dataset.name, Dataset.contract).where(Dataset.name.in_(names)))}


def model_card(ws: Workspace, ref: str) -> ModelCard:
    """The card of the version ``ref`` (``NAME/VERSION`` or ``NAME@ALIAS``).

    Raises:
        NotFoundError: no such version.
    """
    from loopml.register import resolve

    ModelRef.parse(ref)
    record = resolve(ws, ref)
    tags = dict(record.tags or {})
    evaluation = record.evaluation or {}
    gate_report = record.gate_report or {}
    outcomes = gate_report.get("outcomes", []) if isinstance(gate_report, dict) else []
    datasets = _datasets(ws, list(record.dataset_versions))
    deployments = _deployments(ws, record.name, record.version)
    reports, alerts = _monitoring(ws, [d["endpoint"] for d in deployments])
    data = {
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "model": {"name": record.name, "version": record.version, "ref": record.ref, "aliases": list(record.aliases),
                  "task": record.task, "flavor": record.flavor, "artifact_digest": record.artifact_digest,
                  "created_by": record.created_by, "created_at": record.created_at.isoformat(timespec="seconds"),
                  "description": record.description, "run_id": record.run_id, "git_commit": record.git_commit,
                  "git_dirty": record.git_dirty},
        "fields": {k: tags.get(f"card.{k}") for k in CARD_FIELDS},
        "training_data": datasets,
        "contracts": _contracts(ws, [d["ref"] for d in datasets]),
        "signature": record.signature,
        "evaluation": {"task": evaluation.get("task"), "target": evaluation.get("target"),
                       "n_rows": evaluation.get("n_rows"), "metrics": evaluation.get("metrics") or {},
                       "slices": evaluation.get("slices") or {}},
        "fairness": [o for o in outcomes if o.get("kind") == "fairness"],
        "gates": {"passed": record.gates_passed, "message": gate_report.get("message") if gate_report else None,
                  "outcomes": outcomes},
        "approvals": approvals_of(ws, record.name, record.version),
        "deployments": deployments,
        "monitoring": reports,
        "alerts": alerts,
    }
    return ModelCard(scrub(data))
