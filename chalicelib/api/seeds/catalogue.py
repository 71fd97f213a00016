"""`GET /api/tasks`: the task catalogue seed surface (DESIGN §7).

The caller's tasks as one bare JSON array in the seed's field names, every
duration in integer nanoseconds. It reads the project's tasks through the
same `TaskService` listing as `/v1` (the `by_project` index, page after
page) and answers errors as the same problem+json.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field, RootModel

from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint, json_response
from chalicelib.auth.service import Principal
from chalicelib.errors import PayloadTooLarge
from chalicelib.storage.tasks import TaskFilter
from chalicelib.tasks.model import Backoff, CatchUp, Kind, LogOnFull, OnOverlap, Restart, Task
from chalicelib.tasks.service import TaskService, next_unstarted

bp = Blueprint(__name__)
TAGS = ("Task catalogue",)

#: Most tasks `GET /api/tasks` lists; a project with more is answered 413.
MAX_CATALOGUE_TASKS = 1000
#: Tasks read per `by_project` Query page (the `/v1` list's largest page).
PAGE_SIZE = 200
SCHEMA_PATH = "/schemas/CatalogueTask.json"

_NS_PER_S = Decimal(1_000_000_000)


def seconds_to_ns(seconds: float) -> int:
    """A duration in seconds (`/v1`'s unit) as whole nanoseconds, rounded half to even.

    Through `Decimal` of the shortest repr, so `0.1` s is exactly 100_000_000 ns
    and a year stays exact (beyond float's 2**53).
    """
    return int((Decimal(repr(float(seconds))) * _NS_PER_S).to_integral_value(ROUND_HALF_EVEN))


class CatalogueTask(BaseModel):
    """A task in the catalogue seed's shape; durations are integer nanoseconds."""

    model_config = ConfigDict(extra="forbid", title="CatalogueTask")

    name: str
    description: str
    group: str
    kind: Kind
    cron: str | None = Field(
        description="The schedule (cron, alias, `@every`, `@once`); null for a service without one."
    )
    timezone: str = Field(description="IANA time zone of the cron fields.")
    api_trigger: bool
    catch_up: CatchUp
    on_overlap: OnOverlap
    parallelism: int
    retry_attempts: int
    retry_backoff: Backoff
    retry_delay: int = Field(description="Nanoseconds.")
    timeout: int = Field(description="Nanoseconds.")
    keep_for: int = Field(description="Nanoseconds.")
    keep_runs: int
    restart: Restart
    restart_backoff: Backoff
    restart_delay: int = Field(description="Nanoseconds.")
    instances: int
    log_max_size: int = Field(description="Bytes.")
    log_on_full: LogOnFull
    next_run_at: datetime | None = Field(description="RFC 3339; null when it will not fire.")


class TaskCatalogue(RootModel[list[CatalogueTask]]):
    """The caller's tasks ordered by name."""


def catalogue_task(task: Task, now: datetime) -> CatalogueTask:
    return CatalogueTask(
        name=task.name,
        description=task.description,
        group=task.group,
        kind=task.kind,
        cron=task.schedule,
        timezone=task.timezone,
        api_trigger=task.api_trigger,
        catch_up=task.catch_up,
        on_overlap=task.on_overlap,
        parallelism=task.parallelism,
        retry_attempts=task.retry_attempts,
        retry_backoff=task.retry_backoff,
        retry_delay=seconds_to_ns(task.retry_delay),
        timeout=seconds_to_ns(task.timeout),
        keep_for=seconds_to_ns(task.keep_for),
        keep_runs=task.keep_runs,
        restart=task.restart,
        restart_backoff=task.restart_backoff,
        restart_delay=seconds_to_ns(task.restart_delay),
        instances=task.instances,
        log_max_size=task.log_max_size,
        log_on_full=task.log_on_full,
        next_run_at=next_unstarted(task, now),
    )


def project_tasks(
    tasks: TaskService, principal: Principal, *, cap: int, page_size: int = PAGE_SIZE
) -> list[Task]:
    """All of the caller's tasks ordered by name, `page_size` at a time from the
    `by_project` index; PayloadTooLarge when there are more than `cap` (it reads
    at most `cap` + 1 tasks)."""
    found: list[Task] = []
    cursor: str | None = None
    while True:
        page = tasks.list(
            principal,
            limit=min(page_size, cap + 1 - len(found)),
            cursor=cursor,
            where=TaskFilter(),
        )
        found += page.items
        if len(found) > cap:
            raise PayloadTooLarge(
                f"this project has more than {cap} tasks, the most GET /api/tasks lists; "
                "page through GET /v1/scheduled-tasks instead"
            )
        cursor = page.next_cursor
        if cursor is None:
            return found


@endpoint(
    bp,
    "GET",
    "/api/tasks",
    summary="The task catalogue",
    surface=PROBLEMS,
    tags=TAGS,
    response=TaskCatalogue,
    errors=(401, 413),
    description=(
        "The project's tasks ordered by name, as one JSON array in the catalogue seed's "
        f"shape (durations in nanoseconds). At most {MAX_CATALOGUE_TASKS} tasks: a project "
        "with more is answered 413 and pages through `GET /v1/scheduled-tasks` instead."
    ),
)
def list_catalogue(call: Call) -> TaskCatalogue:
    tasks = project_tasks(call.services.tasks, call.who, cap=MAX_CATALOGUE_TASKS)
    now = call.services.clock.now()
    return TaskCatalogue([catalogue_task(task, now) for task in tasks])


@endpoint(
    bp,
    "GET",
    SCHEMA_PATH,
    summary="JSON Schema of a catalogue task",
    surface=PROBLEMS,
    tags=TAGS,
    auth="none",
)
def catalogue_task_schema(call: Call) -> Any:
    """The schema of each item of `GET /api/tasks`."""
    schema = CatalogueTask.model_json_schema(mode="serialization")
    return json_response(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema},
        headers={"Content-Type": "application/schema+json"},
    )
