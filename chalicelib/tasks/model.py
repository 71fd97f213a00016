"""Scheduled tasks as the API and the engine see them (DESIGN §3, §4).

`TaskSpec` is everything a user defines, with the defaults of DESIGN §4; it
validates `POST /v1/scheduled-tasks` bodies and merge-patched documents alike.
`Task` adds what the system keeps; `TaskView` is the API representation.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.schedules.model import ScheduleError, parse_schedule, parse_timezone


class Kind(StrEnum):
    TASK = "task"
    SERVICE = "service"


class CatchUp(StrEnum):
    LATEST = "latest"
    ALL = "all"
    SKIP = "skip"


class OnOverlap(StrEnum):
    QUEUE = "queue"
    BUFFER_ONE = "buffer_one"
    SKIP = "skip"
    TERMINATE = "terminate"
    ALLOW = "allow"


class Backoff(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class Restart(StrEnum):
    NEVER = "never"
    ALWAYS = "always"
    ON_FAILURE = "on_failure"


class LogOnFull(StrEnum):
    DROP_NEW = "drop_new"
    DROP_OLD = "drop_old"
    KILL_TASK = "kill_task"


#: The precision of every duration: one millisecond.
DURATION_STEP_S = 0.001


def _seconds_out(value: float) -> int | float:
    # Durations are JSON numbers; whole seconds print as integers (60, not 60.0).
    return int(value) if float(value).is_integer() else value


def _whole_ms(value: float) -> float:
    # DynamoDB numbers span 1e-130 to 1e126 and a timer cannot tell a microsecond
    # apart: a duration is whole milliseconds (0.25 yes, 0.0005 and 1e-300 no).
    if abs(value) >= 2**53 / 1000:
        return value  # far past every duration's bound, which refuses it
    ms = round(value * 1000)
    if not math.isclose(value * 1000, ms, rel_tol=1e-9, abs_tol=0):
        raise PydanticCustomError(
            "whole_milliseconds", "must be whole milliseconds (at most 3 decimal places)"
        )
    return ms / 1000


#: A duration in seconds (DESIGN §4: durations in /v1 are seconds), finite and in
#: whole milliseconds; the JSON Schema says so with `multipleOf: 0.001`.
Seconds = Annotated[
    float,
    Field(allow_inf_nan=False, json_schema_extra={"multipleOf": DURATION_STEP_S}),
    AfterValidator(_whole_ms),
    PlainSerializer(_seconds_out, return_type=int | float),
]

ONE_DAY_S = 86_400
#: Largest accepted duration of any policy: one year.
MAX_DURATION_S = 366 * ONE_DAY_S
MAX_LOG_BYTES = 262_144
#: The executor function's Lambda timeout: Lambda's maximum. `.chalice/config.json`
#: sets the same for `execute_jobs` (tests/unit/infra/test_lambda_fit.py checks they agree).
EXECUTOR_TIMEOUT_S = 900
#: Part of one executor invocation kept for claiming a job before its run and
#: recording it after; also the lease's margin over a run's timeout.
RUN_MARGIN_S = 60
#: The longest run one executor invocation holds: a task's or queue job's `timeout`.
MAX_RUN_TIMEOUT_S = EXECUTOR_TIMEOUT_S - RUN_MARGIN_S

ACTION_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: What `name` must be, for the JSON Schema: no control character, not only blanks.
_PRINTABLE_NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def checked_timezone(zone: str) -> str:
    """A pydantic validator: `zone` if it is an IANA zone, else the error a task gets."""
    try:
        parse_timezone(zone)
    except ScheduleError as exc:
        raise PydanticCustomError("timezone", str(exc)) from exc
    return zone


def run_timeout_refusal(seconds: float) -> str | None:
    """Why a run's `timeout` is refused (one executor invocation cannot hold it), or None."""
    if seconds <= MAX_RUN_TIMEOUT_S:
        return None
    return (
        f"must be at most {MAX_RUN_TIMEOUT_S} s: what one executor invocation holds (Lambda's "
        f"{EXECUTOR_TIMEOUT_S} s less {RUN_MARGIN_S} s to claim and record the run); run "
        "longer work outside the executor (see docs/deploy.md)"
    )


def checked_run_timeout(seconds: float) -> float:
    """A pydantic validator: a run's `timeout`, if one executor invocation holds it."""
    refusal = run_timeout_refusal(seconds)
    if refusal is not None:
        raise PydanticCustomError("timeout", refusal)
    return seconds


def checked_schedule(schedule: str) -> str:
    """A pydantic validator: the normalised schedule, else the error a task gets."""
    try:
        return parse_schedule(schedule).text
    except ScheduleError as exc:
        raise PydanticCustomError("schedule", str(exc)) from exc


class TaskSpec(BaseModel):
    """A task definition: `POST /v1/scheduled-tasks` body, and the merge-patch target."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=_PRINTABLE_NOT_BLANK,
        description="Unique within the project.",
    )
    description: str = Field("", max_length=2000)
    group: str = Field("", max_length=100, description="Free label for filtering and display.")
    kind: Kind = Field(Kind.TASK, description="A service keeps `instances` runs alive.")
    schedule: str | None = Field(
        None,
        validate_default=True,
        description=(
            "5-field cron, 6-field cron with seconds first, an alias such as `@daily`, "
            "`@every 5m`, or `@once <RFC 3339>`. Required unless `kind` is `service`."
        ),
        examples=["0 9 * * MON-FRI", "*/30 * * * * *", "@every 1h30m"],
    )
    timezone: str = Field("UTC", description="IANA time zone of the cron fields.")
    action: str = Field(pattern=ACTION_NAME, description="Name of a registered action.")
    args: dict[str, Any] = Field(default_factory=dict, description="The action's arguments.")
    enabled: bool = True

    catch_up: CatchUp = CatchUp.LATEST
    catch_up_window: Seconds = Field(ONE_DAY_S, ge=0, le=MAX_DURATION_S)
    on_overlap: OnOverlap = OnOverlap.QUEUE
    parallelism: int = Field(1, ge=1, le=1000)
    queue_max: int = Field(
        10,
        ge=0,
        le=1000,
        description=(
            "With `on_overlap: queue`, firings that may wait for a slot; one more ends "
            "`skipped` (queue full). 0: a firing that finds no slot is skipped at once."
        ),
    )
    pause_after_failures: int = Field(0, ge=0, le=10_000, description="0 never pauses.")
    retry_attempts: int = Field(0, ge=0, le=100)
    retry_backoff: Backoff = Backoff.CONSTANT
    retry_delay: Seconds = Field(60, ge=0, le=ONE_DAY_S)
    # The bound is checked on what the API receives (`TaskService`), not here: a
    # task stored before it stays readable, and its runs fail saying why.
    timeout: Seconds = Field(300, gt=0, json_schema_extra={"maximum": MAX_RUN_TIMEOUT_S})
    restart: Restart = Restart.NEVER
    restart_backoff: Backoff = Backoff.CONSTANT
    restart_delay: Seconds = Field(60, ge=0, le=ONE_DAY_S)
    instances: int = Field(1, ge=1, le=100)
    keep_runs: int = Field(100, ge=1, le=10_000)
    keep_for: Seconds = Field(30 * ONE_DAY_S, gt=0, le=MAX_DURATION_S)
    log_max_size: int = Field(65_536, ge=1, le=MAX_LOG_BYTES, description="Bytes per run.")
    log_on_full: LogOnFull = LogOnFull.DROP_NEW
    api_trigger: bool = True
    requires_approval: bool = False

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        if not name.strip():
            raise PydanticCustomError("name", "must not be blank")
        if _CONTROL.search(name):
            raise PydanticCustomError("name", "must not contain control characters")
        return name

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        return checked_timezone(zone)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, schedule: str | None, info: ValidationInfo) -> str | None:
        if schedule is None:
            if info.data.get("kind", Kind.TASK) == Kind.TASK:
                raise PydanticCustomError("missing", "is required for a task of kind 'task'")
            return None
        return checked_schedule(schedule)


class Task(TaskSpec):
    """A stored task: the user's spec and what the system keeps about it."""

    id: str
    project_id: str
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_status: str | None = None
    #: The job id of the last finished run (the engine's; not in the views).
    last_run_id: str | None = None
    paused_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    #: Start of `@every` intervals: creation or the last schedule change.
    anchor_at: datetime
    consecutive_failures: int = 0
    #: The token that created the task or last changed it, as `<name> (<token
    #: id>)`, and its id: who asked for its firings and restarts (HITL).
    changed_by: str | None = None
    changed_by_token: str | None = None

    def spec(self) -> TaskSpec:
        return TaskSpec.model_validate(self.model_dump(include=set(TaskSpec.model_fields)))


class TaskView(TaskSpec):
    """A task as `/v1` lists it."""

    model_config = ConfigDict(extra="forbid", title="Task")

    id: str
    project_id: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None
    paused_reason: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class TaskDetailView(TaskView):
    """A task as `GET /v1/scheduled-tasks/{task_id}` shows it."""

    model_config = ConfigDict(extra="forbid", title="TaskDetail")

    upcoming: list[datetime] = Field(description="The next 5 fire times; empty when disabled.")
