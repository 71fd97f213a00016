"""`/v1/scheduled-tasks`: create, list, read, merge-patch and delete tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field, create_model

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint, json_response
from chalicelib.storage.tasks import TaskFilter
from chalicelib.tasks.model import Task, TaskDetailView, TaskSpec, TaskView
from chalicelib.tasks.service import next_unstarted, parse_if_match, upcoming_runs

bp = Blueprint(__name__)
TAGS = ("Scheduled tasks",)


class TaskListQuery(ListQuery):
    enabled: bool | None = Field(None, description="Only enabled (true) or disabled (false) tasks.")
    action: str | None = Field(None, min_length=1, description="Only tasks running this action.")
    group: str | None = Field(None, min_length=1, description="Only tasks of this group.")


class TaskList(BaseModel):
    scheduled_tasks: list[TaskView]
    next_cursor: str | None


def _patch_type(annotation: Any, metadata: list[Any], *, nullable: bool) -> Any:
    # The spec's bounds and patterns (`metadata`) hold for a patch's values too.
    typed = Annotated[annotation, *metadata] if metadata else annotation
    return Optional[typed] if nullable else typed  # noqa: UP045


#: A JSON merge patch (RFC 7396) of a task: any subset of the spec's fields;
#: `null` resets a field to its default (so fields without one, `name` and
#: `action`, may not be null). The merged result is validated as a whole by
#: `TaskSpec`, so this model only checks the patch's shape.
TaskPatch: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "TaskPatch",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (
            _patch_type(field.annotation, field.metadata, nullable=not field.is_required()),
            Field(None, description=field.description, json_schema_extra=field.json_schema_extra),
        )
        for name, field in TaskSpec.model_fields.items()
    },
)

_VIEW_FIELDS = set(TaskView.model_fields)


def _fields(task: Task, now: datetime) -> dict[str, Any]:
    # `next_run_at` as users mean it: the next firing that has not started.
    return {**task.model_dump(include=_VIEW_FIELDS), "next_run_at": next_unstarted(task, now)}


def task_view(task: Task, now: datetime) -> TaskView:
    return TaskView.model_validate(_fields(task, now))


def _detail(call: Call, task: Task, status: int = 200) -> Any:
    now = call.services.clock.now()
    view = TaskDetailView.model_validate(
        {**_fields(task, now), "upcoming": upcoming_runs(task, now)}
    )
    return json_response(view, status, headers={"ETag": f'"{task.version}"'})


@endpoint(
    bp,
    "GET",
    "/v1/scheduled-tasks",
    summary="List scheduled tasks",
    surface=PROBLEMS,
    tags=TAGS,
    query=TaskListQuery,
    response=TaskList,
    errors=(401, 422),
)
def list_tasks(call: Call) -> TaskList:
    """The project's tasks ordered by name, a page at a time."""
    q: TaskListQuery = call.query
    page = call.services.tasks.list(
        call.who,
        limit=q.limit,
        cursor=q.cursor,
        where=TaskFilter(enabled=q.enabled, action=q.action, group=q.group),
    )
    return TaskList(
        scheduled_tasks=[task_view(t, call.services.clock.now()) for t in page.items],
        next_cursor=page.next_cursor,
    )


@endpoint(
    bp,
    "POST",
    "/v1/scheduled-tasks",
    summary="Create a scheduled task",
    surface=PROBLEMS,
    tags=TAGS,
    status=201,
    body=TaskSpec,
    response=TaskDetailView,
    errors=(400, 401, 409, 413, 422),
)
def create_task(call: Call) -> Any:
    """Every field of DESIGN §4 may be given; omitted ones take their defaults."""
    task = call.services.tasks.create(call.who, call.body)
    return _detail(call, call.services.tick.fire_soon(task), status=201)


@endpoint(
    bp,
    "GET",
    "/v1/scheduled-tasks/{task_id}",
    summary="Get a scheduled task",
    surface=PROBLEMS,
    tags=TAGS,
    response=TaskDetailView,
    errors=(401, 404),
)
def get_task(call: Call) -> Any:
    """The task with `upcoming`, its next 5 fire times. `ETag` carries `version`."""
    return _detail(call, call.services.tasks.get(call.who, call.path["task_id"]))


@endpoint(
    bp,
    "PATCH",
    "/v1/scheduled-tasks/{task_id}",
    summary="Update a scheduled task (JSON merge patch)",
    surface=PROBLEMS,
    tags=TAGS,
    body=TaskPatch,
    response=TaskDetailView,
    errors=(400, 401, 404, 409, 412, 413, 422),
    headers=("If-Match",),
)
def patch_task(call: Call) -> Any:
    """RFC 7396 merge patch. With `If-Match: "<version>"` a stale version answers 412."""
    patch = call.body.model_dump(exclude_unset=True)
    task = call.services.tasks.patch(
        call.who, call.path["task_id"], patch, parse_if_match(call.headers.get("if-match"))
    )
    return _detail(call, call.services.tick.fire_soon(task))


@endpoint(
    bp,
    "DELETE",
    "/v1/scheduled-tasks/{task_id}",
    summary="Delete a scheduled task",
    surface=PROBLEMS,
    tags=TAGS,
    status=204,
    errors=(401, 404),
)
def delete_task(call: Call) -> None:
    """Stops future firings; active runs finish and history stays until it expires."""
    call.services.tasks.delete(call.who, call.path["task_id"])
