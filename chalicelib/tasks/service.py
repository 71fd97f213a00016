"""Scheduled tasks: create, read, list, merge-patch and delete (DESIGN §3, §4, §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chalicelib.actions import Registry
from chalicelib.auth.service import Principal
from chalicelib.clock import Clock, IdFactory
from chalicelib.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    from_pydantic,
)
from chalicelib.limits import ensure_args_fit
from chalicelib.schedules.model import next_fire, parse_schedule, parse_timezone, upcoming
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.pages import Page
from chalicelib.storage.tasks import TaskFilter, TaskStore
from chalicelib.tasks.model import Kind, Task, TaskSpec, run_timeout_refusal

#: How many fire times `GET /v1/scheduled-tasks/{task_id}` shows.
UPCOMING_COUNT = 5
#: Attempts of a PATCH without If-Match that races another writer.
_PATCH_ATTEMPTS = 3


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, `null` removes."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _fires(spec: TaskSpec) -> bool:
    return spec.enabled and spec.kind is Kind.TASK and spec.schedule is not None


def next_run(spec: TaskSpec, *, after: datetime, anchor: datetime) -> datetime | None:
    """The task's first firing strictly after `after`; None if it will not fire.

    An enabled service has one "firing" — its start, at `after` — which the
    tick turns into `instances` runs; it ignores its schedule.
    """
    if spec.enabled and spec.kind is Kind.SERVICE:
        return after
    if not _fires(spec):
        return None
    assert spec.schedule is not None
    return next_fire(
        parse_schedule(spec.schedule), parse_timezone(spec.timezone), after, anchor=anchor
    )


def next_unstarted(task: Task, now: datetime) -> datetime | None:
    """The task's next firing that has not started: what its views call `next_run_at`.

    The stored `next_run_at` is the tick's bookmark: the tick hands firings to
    SQS up to its lookahead early and moves the bookmark past them. A firing
    handed over whose time is still ahead has not started (a job never starts
    early), so the schedule's first fire time after `now` comes first when it
    lies before the bookmark — computed, not read: it costs no request.
    """
    if not _fires(task):
        return task.next_run_at  # disabled: null; a service: its start
    assert task.schedule is not None
    ahead = next_fire(
        parse_schedule(task.schedule), parse_timezone(task.timezone), now, anchor=task.anchor_at
    )
    if ahead is not None and (task.next_run_at is None or ahead < task.next_run_at):
        return ahead
    return task.next_run_at


def upcoming_runs(task: Task, now: datetime, count: int = UPCOMING_COUNT) -> list[datetime]:
    """The next `count` firings that have not started (see `next_unstarted`)."""
    first = next_unstarted(task, now)
    if first is None or task.schedule is None or task.kind is Kind.SERVICE:
        return []
    later = upcoming(
        parse_schedule(task.schedule),
        parse_timezone(task.timezone),
        first,
        anchor=task.anchor_at,
        count=count - 1,
    )
    return [first, *later]


def refuse_past_once(schedule: str, timezone: str, now: datetime, *, location: str) -> None:
    """A one-shot whose time has passed would never fire: refuse it (422 at `location`)."""
    parsed = parse_schedule(schedule)
    if parsed.kind == "once" and (
        next_fire(parsed, parse_timezone(timezone), now, anchor=now) is None
    ):
        raise ValidationFailed.at(location, "the @once time is in the past", schedule)


def parse_if_match(value: str | None) -> int | None:
    """The version an `If-Match` header names (`"3"`, `W/"3"` or `3`); None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise PreconditionFailed(f"If-Match {value!r} does not name a task version")
    return int(text)


def _changed_by(principal: Principal) -> dict[str, str]:
    """The `Task` fields naming the token that creates or changes it."""
    return {
        "changed_by": principal.label,
        "changed_by_token": principal.token_id,
    }


class TaskService:
    def __init__(
        self,
        store: TaskStore,
        clock: Clock,
        ids: IdFactory,
        actions: Registry,
        *,
        max_args_bytes: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._actions = actions
        self._max_args_bytes = max_args_bytes

    def create(self, principal: Principal, spec: TaskSpec) -> Task:
        self._check_runnable(spec)
        now = self._clock.now()
        self._refuse_past_once(spec, now)
        first = next_run(spec, after=now, anchor=now)
        task = Task(
            **spec.model_dump(),
            id=self._ids.new_id("tsk"),
            project_id=principal.project_id,
            next_run_at=first,
            created_at=now,
            updated_at=now,
            anchor_at=now,
            version=1,
            **_changed_by(principal),
        )
        try:
            self._store.create(task)
        except StorageConflict as exc:
            raise self._name_taken(spec.name) from exc
        return task

    def get(self, principal: Principal, task_id: str) -> Task:
        task = self._store.get(task_id)
        # Another project's task is indistinguishable from a missing one.
        if task is None or task.project_id != principal.project_id:
            raise NotFound(f"scheduled task '{task_id}' not found")
        return task

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, where: TaskFilter
    ) -> Page[Task]:
        return self._store.list_project(
            principal.project_id, limit=limit, cursor=cursor, where=where
        )

    def patch(
        self, principal: Principal, task_id: str, patch: dict[str, Any], if_match: int | None
    ) -> Task:
        """Apply a JSON merge patch to the task's spec.

        With If-Match the write happens only at that version (412 otherwise);
        without it a concurrent change is re-read and the patch applied again.
        """
        for _ in range(_PATCH_ATTEMPTS):
            current = self.get(principal, task_id)
            if if_match is not None and if_match != current.version:
                raise PreconditionFailed(f"task is at version {current.version}, not {if_match}")
            updated = self._patched(current, patch).model_copy(update=_changed_by(principal))
            try:
                self._store.replace(
                    updated, expected_version=current.version, old_name=current.name
                )
            except StorageConflict as exc:
                if exc.reason == "name":
                    raise self._name_taken(updated.name) from exc
                if if_match is not None:
                    raise PreconditionFailed("task changed meanwhile") from exc
                continue
            return updated
        raise Conflict("task keeps changing; try again")

    def delete(self, principal: Principal, task_id: str) -> None:
        task = self.get(principal, task_id)
        try:
            self._store.delete(task)
        except StorageConflict as exc:
            raise NotFound(f"scheduled task '{task_id}' not found") from exc

    # ------------------------------------------------------------ helpers
    def _patched(self, current: Task, patch: dict[str, Any]) -> Task:
        document = merge_patch(current.spec().model_dump(mode="json"), patch)
        try:
            spec = TaskSpec.model_validate(document)
        except ValidationError as exc:
            raise from_pydantic(exc, "body") from exc
        self._check_runnable(spec)
        now = self._clock.now()
        before = current.spec()
        timing_changed = (spec.schedule, spec.timezone, spec.kind) != (
            before.schedule,
            before.timezone,
            before.kind,
        )
        re_enabled = spec.enabled and not before.enabled
        if spec.kind is Kind.SERVICE and spec.instances != before.instances:
            # Start again: the tick starts `instances` runs and the executor
            # skips those beyond the new count (DESIGN §4 `instances`).
            timing_changed = True
        anchor, next_run_at, paused_reason = (
            current.anchor_at,
            current.next_run_at,
            current.paused_reason,
        )
        keeps_timing = spec.enabled and (_fires(spec) or spec.kind is Kind.SERVICE)
        if timing_changed or re_enabled or not keeps_timing:
            # A schedule change or a re-enable starts afresh from now: the
            # disabled period is not caught up (DESIGN §4).
            anchor = now if (timing_changed or re_enabled) else anchor
            next_run_at = next_run(spec, after=now, anchor=anchor)
            if timing_changed:
                self._refuse_past_once(spec, now)
        if spec.enabled:
            paused_reason = None
        return current.model_copy(
            update={
                **spec.model_dump(),
                "next_run_at": next_run_at,
                "anchor_at": anchor,
                "paused_reason": paused_reason,
                "updated_at": now,
                "version": current.version + 1,
            }
        )

    def _check_runnable(self, spec: TaskSpec) -> None:
        """A task names a registered action with args it accepts, as a queue
        submission must, and a `timeout` one executor invocation holds: otherwise
        every firing would fail (422, 413 when too big)."""
        ensure_args_fit(spec.args, self._max_args_bytes)
        self._actions.checked(spec.action, spec.args)
        refusal = run_timeout_refusal(spec.timeout)
        if refusal is not None:
            raise ValidationFailed.at("body.timeout", refusal, spec.timeout)

    @staticmethod
    def _refuse_past_once(spec: TaskSpec, now: datetime) -> None:
        if spec.schedule is None or spec.kind is Kind.SERVICE:
            return
        refuse_past_once(spec.schedule, spec.timezone, now, location="body.schedule")

    @staticmethod
    def _name_taken(name: str) -> Conflict:
        return Conflict(f"a scheduled task named {name!r} already exists in this project")
