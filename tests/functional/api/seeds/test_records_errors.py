"""`/v2` error bodies carry the four fields of seed 002's error table, the last,
`encoded_authorization_message`, null when there is none (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.auth.service import Role
from chalicelib.tasks.model import Task
from chalicelib.tasks.runs import RunService
from tests.conftest import Token
from tests.functional.conftest import Api, body

FIELDS = {"error_code", "error_msg", "error_detail", "encoded_authorization_message"}


def path(task_id: str, project: str = "acme") -> str:
    return f"/v2/{project}/scheduled-tasks/{task_id}/records"


def huawei_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    found: dict[str, Any] = body(response)
    assert set(found) == FIELDS
    assert found["error_code"] == code
    assert found["encoded_authorization_message"] is None
    assert found["error_msg"] and found["error_detail"]
    return found


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("bad limit", 400, "WKS.0001"),
        ("no token", 401, "WKS.0002"),
        ("unknown token", 401, "WKS.0003"),
        ("other project", 403, "WKS.0004"),
        ("no such task", 404, "WKS.0005"),
    ],
)
def test_every_error_carries_encoded_authorization_message_null(
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
    case: str,
    status: int,
    code: str,
) -> None:
    task = make_task()
    member = make_token("acme")
    rival = make_token("rival", Role.ADMIN)
    response = {
        "bad limit": lambda: api.get(path(task.id) + "?limit=101", token=member),
        "no token": lambda: api.get(path(task.id)),
        "unknown token": lambda: api.get(path(task.id), headers={"X-Auth-Token": "tw_nope"}),
        "other project": lambda: api.get(path(task.id), token=rival),
        "no such task": lambda: api.get(path("tsk_unknown"), token=member),
    }[case]()
    huawei_error(response, status, code)


def test_an_internal_error_carries_it_too(
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    task = make_task()
    monkeypatch.setattr(RunService, "runs_at_offset", broken)
    found = huawei_error(api.get(path(task.id), token=make_token("acme")), 500, "WKS.9999")
    assert "secret" not in found["error_detail"]


def test_the_openapi_document_requires_it_and_allows_null(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    schema = doc["components"]["schemas"]["HuaweiError"]
    assert set(schema["required"]) == FIELDS
    field = schema["properties"]["encoded_authorization_message"]
    assert {"type": "null"} in field["anyOf"]
