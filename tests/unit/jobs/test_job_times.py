"""A job holds its times as they are stored, to the millisecond: the answer to
a submission and every later read of the job show the same instants."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.jobs.model import Job, JobStatus, Trigger

AT = datetime(2026, 12, 3, 12, 19, 5, 193328, tzinfo=UTC)
STORED = datetime(2026, 12, 3, 12, 19, 5, 193000, tzinfo=UTC)


def test_a_jobs_times_are_kept_to_the_millisecond() -> None:
    job = Job(
        id="job_1",
        project_id="p",
        action="echo",
        status=JobStatus.SCHEDULED,
        trigger=Trigger.QUEUE,
        scheduled_for=AT,
        enqueued_at=AT,
        expires_at=AT,
        timestamp_ms=0,
    )
    assert (job.scheduled_for, job.enqueued_at, job.expires_at) == (STORED, STORED, STORED)
    assert job.started_at is None
    assert job.model_dump(mode="json")["scheduled_for"] == "2026-12-03T12:19:05.193000Z"
