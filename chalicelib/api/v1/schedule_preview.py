"""`GET /v1/schedules/preview`: a schedule's next fire times and its English
description, for forms that show them while the user types (DESIGN §7 Other).

The query is validated by the very validators of a task's `schedule` and
`timezone` (`chalicelib.tasks.model`), and an `@once` time in the past is
refused as creating the task would refuse it, so the 422 here carries the
same messages and values as `POST /v1/scheduled-tasks` (at `query.*`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from chalice.app import Blueprint
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.schedules.model import parse_schedule, parse_timezone, upcoming
from chalicelib.schedules.text import describe
from chalicelib.tasks.model import checked_schedule, checked_timezone
from chalicelib.tasks.service import refuse_past_once

bp = Blueprint(__name__)
TAGS = ("Scheduled tasks",)

#: Most fire times one preview lists.
MAX_PREVIEW_COUNT = 50


class PreviewQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schedule: Annotated[str, AfterValidator(checked_schedule)] = Field(
        description="A schedule as a task takes it: cron, an alias, `@every …` or `@once …`.",
        examples=["0 9 * * MON-FRI"],
    )
    timezone: Annotated[str, AfterValidator(checked_timezone)] = Field(
        "UTC", description="IANA time zone of the cron fields."
    )
    count: int = Field(5, ge=1, le=MAX_PREVIEW_COUNT, description="How many fire times.")


class SchedulePreview(BaseModel):
    upcoming: list[datetime] = Field(
        description="The next fire times after now (an `@every` counts from now); "
        "fewer for `@once`."
    )
    description: str = Field(examples=["At 09:00 on Monday"])


@endpoint(
    bp,
    "GET",
    "/v1/schedules/preview",
    summary="Preview a schedule",
    surface=PROBLEMS,
    tags=TAGS,
    query=PreviewQuery,
    response=SchedulePreview,
    errors=(401, 422),
)
def preview(call: Call) -> SchedulePreview:
    """The next `count` fire times of a schedule as if a task were created with it
    now, and what it means in English. An invalid schedule or zone answers the
    422 a task with them would get."""
    q: PreviewQuery = call.query
    now = call.services.clock.now()
    refuse_past_once(q.schedule, q.timezone, now, location="query.schedule")
    schedule = parse_schedule(q.schedule)
    times = upcoming(schedule, parse_timezone(q.timezone), now, anchor=now, count=q.count)
    return SchedulePreview(upcoming=times, description=describe(schedule))
