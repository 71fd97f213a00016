"""`/openapi.json`: an OpenAPI 3.1 document generated from every declared route.

The same pydantic models that validate requests and shape responses produce
the schemas here, so the document cannot disagree with the code.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.api.mount import every_route
from chalicelib.api.routing import Route, body_optional

VERSION = "0.1.0"
_REF = "#/components/schemas/{model}"
_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Malformed request",
    401: "Missing, unknown or revoked token",
    403: "Forbidden for this token",
    404: "Not found (or another project's)",
    409: "Conflict",
    412: "If-Match does not match the current version",
    413: "Payload too large",
    422: "Validation failed",
}


#: JSON Schema's names for the bounds pydantic leaves under its own names when a
#: constrained number also has a validator (e.g. `Seconds | None` with `gt=0`).
_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _standard_bounds(node: Any) -> Any:
    """`node` with pydantic's `gt`/`ge`/`lt`/`le` renamed to JSON Schema keywords."""
    if isinstance(node, list):
        return [_standard_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    numeric = node.get("type") in ("number", "integer")
    return {
        (_BOUNDS[key] if numeric and key in _BOUNDS else key): _standard_bounds(value)
        for key, value in node.items()
    }


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for route in routes:
        if route.body is not None:
            seen[(route.body, "validation")] = None
        if route.query is not None:  # for the enums its parameters refer to
            seen[(route.query, "validation")] = None
        if route.response is not None:
            seen[(route.response, "serialization")] = None
        if route.errors:
            seen[(route.surface.error_model, "serialization")] = None
    return list(seen)


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = _standard_bounds(route.query.model_json_schema(ref_template=_REF))
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    for header in route.headers:
        params.append(
            {"name": header, "in": "header", "required": False, "schema": {"type": "string"}}
        )
    return params


def _operation_id(route: Route) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", route.path).strip("_")
    return f"{route.method.lower()}_{words}"


def _name_actions(defs: dict[str, Any], actions: list[str]) -> None:
    """State the registered action names as the `enum` of every body's `action`."""
    for schema in defs.get("$defs", {}).values():
        prop = schema.get("properties", {}).get("action")
        if prop is None:
            continue
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string":
                branch["enum"] = actions


def document(actions: list[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered route; `actions`, the names
    of the registered actions, become the `enum` of bodies' `action` fields."""
    routes = every_route()
    refs, defs = models_json_schema(_models(routes), ref_template=_REF)
    defs = _standard_bounds(defs)
    if actions:
        _name_actions(defs, actions)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": _REASONS.get(route.status, "OK")}
        if route.response is not None:
            success["content"] = {
                "application/json": {"schema": refs[(route.response, "serialization")]}
            }
        responses[str(route.status)] = success
        for status in route.errors:
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {
                    route.surface.error_media_type: {
                        "schema": refs[(route.surface.error_model, "serialization")]
                    }
                },
            }
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": list(route.tags),
            "operationId": _operation_id(route),
            "parameters": _parameters(route),
            "responses": responses,
        }
        if route.description:
            operation["description"] = route.description
        if route.body is not None:
            media = ["application/json"]
            if route.method == "PATCH":
                media.insert(0, "application/merge-patch+json")
            operation["requestBody"] = {
                # A body whose fields are all optional may be left out (`{}`).
                "required": not body_optional(route.body),
                "content": {m: {"schema": refs[(route.body, "validation")]} for m in media},
            }
        operation["security"] = (
            [] if route.auth == "none" else [{"bearerAuth": []}, {"xAuthToken": []}]
        )
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tickwork",
            "version": VERSION,
            "description": "Serverless scheduler and job queue: scheduled tasks, queued jobs, "
            "human approvals and run history.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "xAuthToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            },
        },
    }
