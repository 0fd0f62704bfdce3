"""The OpenAPI 3.1 document, built by hand (no FastAPI on the request path, no CDN)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"}, "field": {"type": ["string", "null"]}, "rule": {"type": ["string", "null"]}}}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
    "datatype": {"type": "string"}, "parameters": {"type": "object"}, "data": {"type": "array"}}}


def _json(schema: Any, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad input (names the field and the rule)", 404: "Unknown model or version",
            413: "Body or row count over the limit", 415: "Not JSON", 500: "The model failed on valid input",
            501: "No prediction log on this server", 503: "Overloaded; see Retry-After"}
    return {str(c): _json({"$ref": "#/components/schemas/Error"}, text[c]) for c in codes}


def openapi_document(version: str, endpoints: dict[str, Any]) -> dict[str, Any]:
    """The document for this server; ``endpoints`` maps endpoint name -> served model."""
    infer_req = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {
            "enum": ["predict", "predict_proba"]}}}}}}
    infer_resp = {"type": "object", "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
        "parameters": {"type": "object"}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}}}
    invocations_req = {"type": "object", "description": "One of the MLflow scoring-server shapes", "oneOf": [
        {"required": ["dataframe_split"], "properties": {"dataframe_split": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}}, "data": {"type": "array"}}}}},
        {"required": ["dataframe_records"], "properties": {"dataframe_records": {"type": "array"}}},
        {"required": ["instances"], "properties": {"instances": {"type": "array"}}},
        {"required": ["inputs"], "properties": {"inputs": {"type": ["array", "object"]}}}]}
    invocations_resp = {"type": "object", "properties": {
        "predictions": {"type": "array"}, "probabilities": {"type": "array"}, "classes": {"type": "array"},
        "model_name": {"type": "string"}, "model_version": {"type": "integer"}, "request_id": {"type": "string"}}}
    name_param = {"name": "model_name", "in": "path", "required": True,
                  "schema": {"type": "string", "enum": sorted(endpoints)}}
    version_param = {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}
    rid = {"name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string"}}

    def infer_op(params: list[Any]) -> dict[str, Any]:
        return {"post": {"summary": "Open Inference Protocol v2 inference", "parameters": [*params, rid],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": infer_req}}},
                         "responses": {"200": _json(infer_resp), **_errors(400, 404, 413, 415, 500, 503)}}}

    def get(summary: str, schema: Any, params: list[Any] | None = None, errors: tuple[int, ...] = ()) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": params or [],
                        "responses": {"200": _json(schema), **_errors(*errors)}}}

    obj = {"type": "object"}
    label = {"type": "object", "required": ["request_id", "label"], "properties": {
        "request_id": {"type": "string"}, "label": {"type": ["string", "number", "integer", "boolean"]},
        "row": {"type": "integer", "minimum": 0}, "ts": {"type": "string", "format": "date-time"}}}
    feedback_req = {"oneOf": [label, {"type": "array", "items": label},
                              {"type": "object", "required": ["feedback"],
                               "properties": {"feedback": {"type": "array", "items": label}}}]}

    def feedback_op(params: list[Any], summary: str) -> dict[str, Any]:
        return {"post": {"summary": summary, "parameters": params,
                         "requestBody": {"required": True, "content": {"application/json": {"schema": feedback_req}}},
                         "responses": {"200": _json({"type": "object", "properties": {
                             "endpoint": {"type": "string"}, "rows": {"type": "integer"}}}),
                             **_errors(400, 404, 413, 415, 501)}}}

    paths = {
        "/v2/health/live": get("Liveness", obj),
        "/v2/health/ready": get("Readiness", obj),
        "/v2": get("Server metadata", obj),
        "/v2/models/{model_name}": get("Model metadata", obj, [name_param], (404,)),
        "/v2/models/{model_name}/versions/{model_version}": get("Model metadata", obj, [name_param, version_param], (404,)),
        "/v2/models/{model_name}/ready": get("Model readiness", obj, [name_param], (404,)),
        "/v2/models/{model_name}/versions/{model_version}/ready": get("Model readiness", obj,
                                                                      [name_param, version_param], (404,)),
        "/v2/models/{model_name}/infer": infer_op([name_param]),
        "/v2/models/{model_name}/versions/{model_version}/infer": infer_op([name_param, version_param]),
        "/invocations": {"post": {
            "summary": "MLflow scoring-server inference (first endpoint)", "parameters": [rid],
            "requestBody": {"required": True, "content": {"application/json": {"schema": invocations_req}}},
            "responses": {"200": _json(invocations_resp), **_errors(400, 413, 415, 500, 503)}}},
        "/v2/models/{model_name}/feedback": feedback_op([name_param], "True labels by request id (one or many)"),
        "/feedback": feedback_op([], "True labels by request id for the first endpoint (one or many)"),
        "/ping": {"get": {"summary": "MLflow health check", "responses": {"200": {"description": "OK"}}}},
        "/health": get("Health", obj),
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
            "description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "loopml model server", "version": version,
                     "description": "Open Inference Protocol v2 and MLflow /invocations."},
            "paths": paths,
            "components": {"schemas": {"Error": _ERROR, "Tensor": _TENSOR}}}
