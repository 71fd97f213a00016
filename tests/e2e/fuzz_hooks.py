"""Schemathesis hooks for `test_fuzz_openapi`: examples for the values no JSON
Schema can state, so that the data the fuzzer calls valid is valid.

Only positively generated cases are touched (negative ones stay as generated):
- `cursor` is dropped: a cursor is valid only as some page's `next_cursor`;
- a task's `schedule` and `timezone` come from working examples: a cron that
  never fires (`0 0 30 2 *`) or an `@once` in the past matches any pattern a
  schema could give, and zone names are whatever the tz database holds; a
  patch that makes the task a `task` brings a schedule (the stored task may be
  a service without one: a relation to stored state no schema states);
- a job's or task's `action` becomes `echo`, which takes any `args` (the schema
  lists the registered names; which args fit which name is each action's own
  model, shown by `GET /v1/queue/actions`);
- a job's `expires` is dropped when it is deferred: `expires` counts from
  submission and must reach the deferred start, a relation between two fields
  that no schema states.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SCHEDULES = (
    "0 9 * * MON-FRI",
    "*/30 * * * * *",
    "@every 1h30m",
    "@daily",
    "15 2 * * *",
    "@once 2099-01-01T09:00:00Z",
)
ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata")
#: Operations whose bodies name an action, and those that take a schedule.
ACTION_BODIES = {
    ("POST", "/v1/queue/jobs"),
    ("POST", "/v1/scheduled-tasks"),
    ("PATCH", "/v1/scheduled-tasks/{task_id}"),
}
SCHEDULE_BODIES = {("POST", "/v1/scheduled-tasks"), ("PATCH", "/v1/scheduled-tasks/{task_id}")}
PREVIEW = ("GET", "/v1/schedules/preview")
SUBMIT = ("POST", "/v1/queue/jobs")


def _examples(values: dict[str, Any], pick: int, *, patch: bool) -> None:
    # A patch that makes the task a `task` (a null `kind` resets it to that
    # default) brings a schedule: the stored task may be a service without one.
    makes_a_task = values.get("kind") != "service" and (not patch or "kind" in values)
    if values.get("schedule") is not None or makes_a_task:
        values["schedule"] = SCHEDULES[pick % len(SCHEDULES)]
    elif patch and "schedule" in values:
        del values["schedule"]  # null resets it to none, which only a service may have
    if values.get("timezone") is not None:
        values["timezone"] = ZONES[pick % len(ZONES)]


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    key = (case.operation.method.upper(), case.operation.path)
    query, body = case.query, case.body
    if isinstance(query, dict):
        query.pop("cursor", None)
        if key == PREVIEW:
            _examples(query, len(str(query)), patch=False)
    if isinstance(body, dict):
        pick = len(str(body))  # deterministic for a given generated body
        if key in ACTION_BODIES and ("action" in body or "args" in body):
            # `echo` takes any args; every other action's args follow its own model.
            body["action"] = "echo"
        deferred = body.get("defer_until") is not None or body.get("defer_by") is not None
        if key == SUBMIT and deferred:
            body.pop("expires", None)
        if key in SCHEDULE_BODIES:
            _examples(body, pick, patch=key[0] == "PATCH")
    return case
