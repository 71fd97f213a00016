"""The pure mappings of the seed surfaces: jobs as `/v2` records (DESIGN §7)
and `/api/tasks` durations in nanoseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.api.seeds.catalogue import seconds_to_ns
from chalicelib.api.seeds.records import (
    RECORD_STATUS,
    RecordStatus,
    ScheduledType,
    cron_cycle,
    record_counts,
    record_of,
    scheduled_type,
    start_time,
)
from chalicelib.jobs.model import Job, JobStatus, Trigger

FIRE = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)


def job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": "tsk_1:1806107400000",
        "project_id": "acme",
        "action": "echo",
        "status": JobStatus.COMPLETE,
        "task_id": "tsk_1",
        "trigger": Trigger.CRON,
        "scheduled_for": FIRE,
        "timestamp_ms": 0,
    }
    return Job.model_validate({**base, **fields})


# ------------------------------------------------------------ scheduled_type
@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@once 2027-01-01T09:00:00Z", ScheduledType.FIXED_TIME),
        ("@every 5m", ScheduledType.CUSTOM),
        ("@every 24h", ScheduledType.CUSTOM),
        # Restricted by nothing: every day, whatever the time-of-day fields say.
        ("0 9 * * *", ScheduledType.DAY),
        ("*/5 * * * *", ScheduledType.DAY),
        ("30 0 9 * * *", ScheduledType.DAY),  # six fields, seconds first
        ("0 9 ? * ?", ScheduledType.DAY),
        ("0 9 1-31 * 0-7", ScheduledType.DAY),  # full ranges restrict nothing
        ("0 9 */1 JAN-DEC *", ScheduledType.DAY),
        ("@daily", ScheduledType.DAY),
        ("@hourly", ScheduledType.DAY),
        # Restricted by day of week.
        ("0 9 * * MON-FRI", ScheduledType.WEEK),
        ("0 9 * * 0", ScheduledType.WEEK),
        ("0 0 9 ? * SAT,SUN", ScheduledType.WEEK),
        ("@weekly", ScheduledType.WEEK),
        # Restricted by day of month.
        ("0 9 1 * *", ScheduledType.MONTH),
        ("0 9 1,15 * *", ScheduledType.MONTH),
        ("0 9 L * *", ScheduledType.MONTH),
        ("0 9 */2 * *", ScheduledType.MONTH),
        ("@monthly", ScheduledType.MONTH),
        # Anything else.
        ("0 9 1 1 *", ScheduledType.CUSTOM),  # months restricted
        ("@yearly", ScheduledType.CUSTOM),
        ("0 9 * 6-8 MON", ScheduledType.CUSTOM),
        ("0 9 1 * MON", ScheduledType.CUSTOM),  # both day fields: cron ORs them
        ("0 9 * * FRI#2", ScheduledType.CUSTOM),  # nth weekday of the month
    ],
)
def test_a_schedules_own_firings_map_to_its_cycle(schedule: str, expected: ScheduledType) -> None:
    assert scheduled_type(schedule, Trigger.CRON) is expected
    assert scheduled_type(schedule, Trigger.CATCH_UP) is expected


@pytest.mark.parametrize("trigger", [Trigger.API, Trigger.BACKFILL, Trigger.RETRY, Trigger.QUEUE])
@pytest.mark.parametrize("schedule", ["0 9 * * *", "@every 5m", "0 9 1 1 *", None])
def test_jobs_made_for_one_instant_are_fixed_time(schedule: str | None, trigger: Trigger) -> None:
    assert scheduled_type(schedule, trigger) is ScheduledType.FIXED_TIME


@pytest.mark.parametrize("trigger", [Trigger.CRON, Trigger.RESTART])
def test_a_service_without_a_cycle_is_custom(trigger: Trigger) -> None:
    assert scheduled_type(None, trigger) is ScheduledType.CUSTOM


def test_cron_cycle_reads_the_day_fields_of_either_cron_form() -> None:
    assert cron_cycle("0 0 9 * * MON") is ScheduledType.WEEK
    assert cron_cycle("0 9 * * MON") is ScheduledType.WEEK
    assert cron_cycle("0 0 9 15 * *") is ScheduledType.MONTH


# ------------------------------------------------------------ status
def test_every_job_status_has_a_record_status() -> None:
    assert set(RECORD_STATUS) == set(JobStatus)
    assert {status.value: RECORD_STATUS[status].value for status in JobStatus} == {
        "scheduled": "WAITING",
        "awaiting_approval": "WAITING",
        "queued": "WAITING",
        "active": "RUNNING",
        "complete": "SUCCESS",
        "failed": "FAILED",
        "expired": "FAILED",
        "skipped": "SKIPPED",
        "cancelled": "CANCELLED",
        "rejected": "CANCELLED",
    }
    assert set(RECORD_STATUS.values()) == set(RecordStatus)


# ------------------------------------------------------------ counts
@pytest.mark.parametrize(
    ("status", "counts"),
    [
        (JobStatus.SKIPPED, (0, 0, 1)),
        (JobStatus.CANCELLED, (0, 0, 1)),
        (JobStatus.REJECTED, (0, 0, 1)),
        (JobStatus.EXPIRED, (0, 1, 0)),
        (JobStatus.FAILED, (0, 1, 0)),  # e.g. failed by the dead-letter queue
        (JobStatus.COMPLETE, (0, 0, 0)),  # the action reported no targets
        (JobStatus.SCHEDULED, (0, 0, 0)),
        (JobStatus.ACTIVE, (0, 0, 0)),
    ],
)
def test_a_job_that_recorded_no_counts_counts_one_in_its_outcomes_column(
    status: JobStatus, counts: tuple[int, int, int]
) -> None:
    assert record_counts(job(status=status)) == counts


def test_counts_an_action_reported_are_kept() -> None:
    reported = job(status=JobStatus.FAILED, success_num=7, failed_num=2, skip_num=1)
    assert record_counts(reported) == (7, 2, 1)
    assert record_counts(job(status=JobStatus.COMPLETE, success_num=1)) == (1, 0, 0)


# ------------------------------------------------------------ start_time
@pytest.mark.parametrize(
    ("started", "zone", "expected"),
    [
        # Not started: its fire time. 00:30 UTC on the spring-forward day in Amsterdam.
        (None, "Europe/Amsterdam", "2027-03-28 01:30:00"),
        (datetime(2027, 3, 28, 1, 0, 5, tzinfo=UTC), "Europe/Amsterdam", "2027-03-28 03:00:05"),
        (datetime(2027, 3, 28, 1, 0, 5, 999_000, tzinfo=UTC), "UTC", "2027-03-28 01:00:05"),
        (None, "Asia/Shanghai", "2027-03-28 08:30:00"),
        (None, "America/St_Johns", "2027-03-27 22:00:00"),  # half-hour offset, day before
    ],
)
def test_start_time_is_the_start_else_the_fire_time_in_the_tasks_zone(
    started: datetime | None, zone: str, expected: str
) -> None:
    assert start_time(job(started_at=started), ZoneInfo(zone)) == expected


# ------------------------------------------------------------ whole record
def test_record_of_maps_every_field() -> None:
    ran = job(
        status=JobStatus.ACTIVE,
        action="http_request",
        trigger=Trigger.CATCH_UP,
        started_at=datetime(2027, 3, 28, 0, 30, 2, tzinfo=UTC),
    )
    record = record_of(ran, schedule="30 0 * * SUN", time_zone="UTC")
    assert record.model_dump(mode="json") == {
        "id": ran.id,
        "start_time": "2027-03-28 00:30:02",
        "task_type": "http_request",
        "scheduled_type": "WEEK",
        "life_cycle_type": "catch_up",
        "status": "RUNNING",
        "success_num": 0,
        "failed_num": 0,
        "skip_num": 0,
        "time_zone": "UTC",
        "execute_task_id": ran.id,
        "execute_object_type": "JOB",
    }


# ------------------------------------------------------------ nanoseconds (/api/tasks)
@pytest.mark.parametrize(
    ("seconds", "ns"),
    [
        (0, 0),
        (1, 1_000_000_000),
        (60, 60_000_000_000),
        (0.1, 100_000_000),
        (1.5, 1_500_000_000),
        (0.000000001, 1),
        (0.0000000015, 2),  # half a nanosecond rounds to even
        (0.0000000025, 2),
        (300.000001, 300_000_001_000),
        (2_592_000, 2_592_000_000_000_000),
        # Past 2**53 ns, where `round(seconds * 1e9)` would answer ...988.
        (24_063_459.05704099, 24_063_459_057_040_990),
    ],
)
def test_seconds_become_whole_nanoseconds(seconds: float, ns: int) -> None:
    assert seconds_to_ns(seconds) == ns
    assert isinstance(seconds_to_ns(seconds), int)
