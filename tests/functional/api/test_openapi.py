"""`/openapi.json`, `/schemas/ErrorModel.json` and `/health`."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, body

DOCUMENTED = {
    ("get", "/v1/scheduled-tasks"),
    ("post", "/v1/scheduled-tasks"),
    ("get", "/v1/scheduled-tasks/{task_id}"),
    ("patch", "/v1/scheduled-tasks/{task_id}"),
    ("delete", "/v1/scheduled-tasks/{task_id}"),
    ("post", "/v1/admin/tokens"),
    ("get", "/v1/admin/tokens"),
    ("delete", "/v1/admin/tokens/{token_id}"),
    ("get", "/health"),
    ("get", "/v1/schedules/preview"),
    ("get", "/v1/me"),
}


def test_openapi_31_lists_every_route_with_its_models(api: Api) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = body(response)
    assert doc["openapi"] == "3.1.0"
    operations = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert operations >= DOCUMENTED
    create = doc["paths"]["/v1/scheduled-tasks"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    task_spec = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"name", "schedule", "action", "on_overlap", "log_on_full"} <= set(
        task_spec["properties"]
    )
    assert task_spec["properties"]["on_overlap"]["$ref"].endswith("/OnOverlap")
    assert doc["components"]["schemas"]["OnOverlap"]["enum"] == [
        "queue",
        "buffer_one",
        "skip",
        "terminate",
        "allow",
    ]
    listing = doc["paths"]["/v1/scheduled-tasks"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "cursor", "enabled", "group"}
    assert "422" in listing["responses"]
    problem = listing["responses"]["422"]["content"]["application/problem+json"]
    assert problem["schema"]["$ref"].endswith("/ErrorModel")


def test_every_ref_resolves(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref


def test_error_schema_resolves_and_describes_problems(api: Api) -> None:
    problem = body(api.get("/v1/scheduled-tasks"))
    assert problem["$schema"] == "http://localhost/schemas/ErrorModel.json"
    schema = body(api.get("/schemas/ErrorModel.json"))
    assert set(schema["required"]) >= {"$schema", "title", "status", "detail", "instance"}
    assert set(schema["properties"]) == set(problem)


def test_health_needs_no_token(api: Api) -> None:
    assert body(api.get("/health"))["status"] == "ok"
