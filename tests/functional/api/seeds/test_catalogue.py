"""`GET /api/tasks` on moto (DESIGN §7): the catalogue seed's task shape,
durations in nanoseconds, problem+json errors whose `$schema` resolves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.api.seeds.catalogue import MAX_CATALOGUE_TASKS, project_tasks
from chalicelib.errors import PayloadTooLarge
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME

SEED_FIELDS = {
    "name",
    "description",
    "group",
    "kind",
    "cron",
    "timezone",
    "api_trigger",
    "catch_up",
    "on_overlap",
    "parallelism",
    "retry_attempts",
    "retry_backoff",
    "retry_delay",
    "timeout",
    "keep_for",
    "keep_runs",
    "restart",
    "restart_backoff",
    "restart_delay",
    "instances",
    "log_max_size",
    "log_on_full",
    "next_run_at",
}


@pytest.fixture
def member(make_token: Callable[..., Token]) -> Token:
    return make_token("acme")


def catalogue(api: Api, token: Token) -> list[dict[str, Any]]:
    response = api.get("/api/tasks", token=token)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "application/json"
    found: list[dict[str, Any]] = body(response)
    return found


def test_a_task_in_the_seed_shape_with_nanosecond_durations(
    api: Api, member: Token, make_task: Callable[..., Task]
) -> None:
    make_task(
        name="nightly-report",
        description="Builds the report",
        group="reports",
        schedule="30 2 * * *",
        timezone="Europe/Amsterdam",
        action="echo",
        api_trigger=False,
        catch_up="all",
        on_overlap="skip",
        parallelism=2,
        retry_attempts=3,
        retry_backoff="exponential",
        retry_delay=1.5,
        timeout=0.25,
        keep_for=86_400,
        keep_runs=7,
        log_max_size=1024,
        log_on_full="drop_old",
    )
    assert catalogue(api, member) == [
        {
            "name": "nightly-report",
            "description": "Builds the report",
            "group": "reports",
            "kind": "task",
            "cron": "30 2 * * *",
            "timezone": "Europe/Amsterdam",
            "api_trigger": False,
            "catch_up": "all",
            "on_overlap": "skip",
            "parallelism": 2,
            "retry_attempts": 3,
            "retry_backoff": "exponential",
            "retry_delay": 1_500_000_000,
            "timeout": 250_000_000,
            "keep_for": 86_400_000_000_000,
            "keep_runs": 7,
            "restart": "never",
            "restart_backoff": "constant",
            "restart_delay": 60_000_000_000,
            "instances": 1,
            "log_max_size": 1024,
            "log_on_full": "drop_old",
            # 02:30 in Amsterdam (UTC+1 in January), the day after the clock's 09:00 UTC.
            "next_run_at": "2027-01-05T01:30:00Z",
        }
    ]


def test_defaults_services_disabled_tasks_and_order_by_name(
    api: Api, member: Token, make_task: Callable[..., Task]
) -> None:
    make_task(name="b-every", schedule="@every 1h30m")
    make_task(name="a-off", enabled=False)
    make_task(name="c-service", kind="service", schedule=None, restart="always", instances=3)
    listed = catalogue(api, member)
    assert [t["name"] for t in listed] == ["a-off", "b-every", "c-service"]
    assert all(set(t) == SEED_FIELDS for t in listed)
    off, every, service = listed
    assert off["next_run_at"] is None
    assert (off["timeout"], off["retry_delay"], off["keep_for"]) == (
        300_000_000_000,
        60_000_000_000,
        2_592_000_000_000_000,
    )
    assert every["cron"] == "@every 1h30m"
    assert every["next_run_at"] == "2027-01-04T10:30:00Z"
    assert (service["kind"], service["cron"], service["instances"]) == ("service", None, 3)
    assert service["next_run_at"] == "2027-01-04T09:00:00Z"  # a service starts now


def test_only_the_callers_project(
    api: Api,
    services: Services,
    make_token: Callable[..., Token],
    member: Token,
    make_task: Callable[..., Task],
) -> None:
    make_task(name="ours")
    rival = make_token("rival")
    assert catalogue(api, rival) == []
    assert [t["name"] for t in catalogue(api, member)] == ["ours"]


def test_errors_are_problem_json_whose_schema_resolves(api: Api) -> None:
    response = api.get("/api/tasks", headers={"Authorization": "Bearer tw_nope"})
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = body(response)
    assert problem["status"] == 401
    assert problem["instance"] == "/api/tasks"
    assert problem["$schema"] == "http://localhost/schemas/ErrorModel.json"
    schema = api.get(problem["$schema"].removeprefix("http://localhost"))
    assert schema.status_code == 200
    assert set(body(schema)["properties"]) == set(problem)
    assert api.get("/api/tasks").status_code == 401


def test_the_task_schema_describes_each_item(
    api: Api, member: Token, make_task: Callable[..., Task]
) -> None:
    make_task()
    response = api.get("/schemas/CatalogueTask.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/schema+json"
    schema = body(response)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    [item] = catalogue(api, member)
    assert set(schema["properties"]) == set(item) == SEED_FIELDS
    assert set(schema["required"]) == SEED_FIELDS
    assert schema["properties"]["timeout"]["type"] == "integer"


def test_the_catalogue_appears_in_openapi(api: Api) -> None:
    doc = body(api.get("/openapi.json"))
    operation = doc["paths"]["/api/tasks"]["get"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    array = doc["components"]["schemas"][ok.rsplit("/", 1)[1]]
    assert array["type"] == "array"
    assert array["items"]["$ref"].endswith("/CatalogueTask")
    problem = operation["responses"]["401"]["content"]["application/problem+json"]["schema"]
    assert problem["$ref"].endswith("/ErrorModel")
    assert str(MAX_CATALOGUE_TASKS) in operation["description"]
    assert "get" in doc["paths"]["/schemas/CatalogueTask.json"]


def test_reads_page_after_page_and_refuses_more_than_the_cap(
    services: Services, make_task: Callable[..., Task]
) -> None:
    for i in range(7):
        make_task(name=f"task-{i}")
    listed = project_tasks(services.tasks, ACME, cap=7, page_size=2)
    assert [t.name for t in listed] == [f"task-{i}" for i in range(7)]
    assert len(project_tasks(services.tasks, ACME, cap=100, page_size=3)) == 7
    with pytest.raises(PayloadTooLarge, match="more than 6 tasks"):
        project_tasks(services.tasks, ACME, cap=6, page_size=2)
