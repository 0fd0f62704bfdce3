"""The cluster manifests under deploy/cluster/k8s validate against Kubernetes' own schemas, offline.

Built-in kinds are checked with ``kubernetes-validate`` (it bundles the
OpenAPI-derived JSON schemas of each Kubernetes release; strict mode rejects
unknown fields). The KubeRay ``RayCluster`` is a CRD those schemas do not
hold; it is checked against a minimal JSON Schema of the fields we use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "cluster"
K8S_VERSION = "1.30.0"

_CONTAINER = {"type": "object", "required": ["name", "image"],
              "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}
_POD_TEMPLATE = {"type": "object", "required": ["spec"], "properties": {"spec": {
    "type": "object", "required": ["containers"],
    "properties": {"containers": {"type": "array", "minItems": 1, "items": _CONTAINER}}}}}
RAYCLUSTER_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["headGroupSpec", "workerGroupSpecs"],
            "additionalProperties": False,
            "properties": {
                "rayVersion": {"type": "string"},
                "enableInTreeAutoscaling": {"type": "boolean"},
                "headGroupSpec": {"type": "object", "required": ["template", "rayStartParams"],
                                  "additionalProperties": False,
                                  "properties": {"rayStartParams": {"type": "object",
                                                                    "additionalProperties": {"type": "string"}},
                                                 "template": _POD_TEMPLATE}},
                "workerGroupSpecs": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["groupName", "template", "rayStartParams"],
                    "additionalProperties": False,
                    "properties": {"groupName": {"type": "string"}, "replicas": {"type": "integer", "minimum": 0},
                                   "minReplicas": {"type": "integer", "minimum": 0},
                                   "maxReplicas": {"type": "integer", "minimum": 1},
                                   "rayStartParams": {"type": "object", "additionalProperties": {"type": "string"}},
                                   "template": _POD_TEMPLATE}}},
            },
        },
    },
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


DOCS = _documents()


def test_the_layout_has_every_piece() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in DOCS}
    assert {("Deployment", "loopml-server"), ("Deployment", "loopml-serving-churn"),
            ("Service", "loopml-serving-churn"), ("HorizontalPodAutoscaler", "loopml-serving-churn"),
            ("Deployment", "loopml-scheduler"), ("RayCluster", "loopml-ray"),
            ("ConfigMap", "loopml-config"), ("Secret", "loopml-secrets")} <= kinds
    scheduler = next(d for _, d in DOCS if d["metadata"]["name"] == "loopml-scheduler")
    assert scheduler["spec"]["replicas"] == 1 and scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert (ROOT / "Containerfile").is_file() and (ROOT / "README.md").is_file()
    targets = {line.split()[-1] for line in (ROOT / "Containerfile").read_text().splitlines()
               if line.startswith("FROM ")}
    assert {"server", "serving", "scheduler", "worker"} <= targets


@pytest.mark.parametrize("name,doc", [(n, d) for n, d in DOCS if d["kind"] != "RayCluster"], ids=lambda v: v
                         if isinstance(v, str) else "")
def test_builtin_kinds_match_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kv.validate(doc, K8S_VERSION, strict=True)


def test_every_pod_gets_the_connection_settings() -> None:
    for name, doc in DOCS:
        if doc["kind"] == "Deployment":
            containers = doc["spec"]["template"]["spec"]["containers"]
        elif doc["kind"] == "RayCluster":
            spec = doc["spec"]
            containers = [c for g in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
                          for c in g["template"]["spec"]["containers"]]
        else:
            continue
        for c in containers:
            refs = {next(iter(r.values()))["name"] for r in c.get("envFrom", [])}
            assert refs == {"loopml-config", "loopml-secrets"}, name


def test_raycluster_matches_its_minimal_schema() -> None:
    (doc,) = [d for _, d in DOCS if d["kind"] == "RayCluster"]
    jsonschema.validate(doc, RAYCLUSTER_SCHEMA)
    broken = {**doc, "spec": {**doc["spec"], "workerGroupSpecs": [{"groupName": "cpu"}]}}
    with pytest.raises(jsonschema.ValidationError, match=r"'template' is a required property"):
        jsonschema.validate(broken, RAYCLUSTER_SCHEMA)


def test_a_broken_manifest_is_caught() -> None:
    doc = next(d for _, d in DOCS if d["kind"] == "Deployment")
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)
