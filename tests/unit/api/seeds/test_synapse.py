"""The Synapse status mapping (DESIGN §7) and the listing indexes' definition."""

from __future__ import annotations

import pytest

from chalicelib.api.seeds.synapse_view import (
    JOB_STATUSES,
    ScheduledTask,
    TaskStatus,
    continue_from,
    task_status,
)
from chalicelib.jobs.model import JobStatus
from chalicelib.storage.job_listing import (
    LISTING_SHARDS,
    action_shard,
    listing_shard,
    status_shard,
)
from chalicelib.storage.tables import LISTING_ATTRIBUTES, JobRecord
from infra.resources import tables


@pytest.mark.parametrize(
    ("job", "task"),
    [
        (JobStatus.SCHEDULED, TaskStatus.SCHEDULED),
        (JobStatus.QUEUED, TaskStatus.SCHEDULED),
        (JobStatus.AWAITING_APPROVAL, TaskStatus.SCHEDULED),
        (JobStatus.ACTIVE, TaskStatus.ACTIVE),
        (JobStatus.COMPLETE, TaskStatus.COMPLETE),
        (JobStatus.SKIPPED, TaskStatus.COMPLETE),
        (JobStatus.FAILED, TaskStatus.FAILED),
        (JobStatus.CANCELLED, TaskStatus.FAILED),
        (JobStatus.REJECTED, TaskStatus.FAILED),
        (JobStatus.EXPIRED, TaskStatus.FAILED),
    ],
)
def test_each_job_status_shows_as_one_synapse_status(job: JobStatus, task: TaskStatus) -> None:
    assert task_status(job) is task
    assert job in JOB_STATUSES[task]


def test_the_mapping_covers_every_job_status_once() -> None:
    mapped = [status for statuses in JOB_STATUSES.values() for status in statuses]
    assert sorted(mapped) == sorted(JobStatus)
    assert set(JOB_STATUSES) == set(TaskStatus)


def test_listing_keys_spread_over_a_fixed_number_of_shards() -> None:
    shards = {listing_shard(f"job_{n}") for n in range(200)}
    assert shards == set(range(LISTING_SHARDS))
    shard = listing_shard("job_1")
    assert status_shard("job_1", JobStatus.ACTIVE) == f"active#{shard}"
    assert action_shard("job_1", "echo") == f"echo#{shard}"


def test_the_listing_indexes_copy_the_same_attributes_in_model_and_infra() -> None:
    defined = {
        index["IndexName"]: index["Projection"]
        for index in tables("unit")["jobs"]["Properties"]["GlobalSecondaryIndexes"]
    }
    for index in (JobRecord.by_status, JobRecord.by_action, JobRecord.by_resource):
        name = index.Meta.index_name
        assert defined[name] == {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": LISTING_ATTRIBUTES,
        }


def _tasks(*stamps: int) -> list[ScheduledTask]:
    return [
        ScheduledTask(
            id=f"job_{n}",
            action="echo",
            status=TaskStatus.COMPLETE,
            timestamp_ms=stamp,
            resource_id=None,
            result=None,
            error=None,
        )
        for n, stamp in enumerate(stamps)
    ]


@pytest.mark.parametrize(
    ("stamps", "resume", "max_timestamp", "kept", "next_max"),
    [
        ((30, 20, 10), None, None, 3, None),  # everything: no header
        ((30, 20), 10, None, 2, 10),  # stopped before 10: ask from 10 on
        ((30, 20, 20), 20, None, 1, 20),  # the 20s come whole in the next answer
        ((20, 20), 20, None, 2, 19),  # only one millisecond fits: skip past it
        ((20, 20), 20, 20, 2, 19),
        ((), 15, None, 0, 15),  # nothing found within the budget: go on from 15
        ((), 15, 30, 0, 15),
        ((), 30, 30, 0, 29),  # ... but never ask the same again
    ],
)
def test_an_answer_continues_where_it_stopped_without_overlap_or_loops(
    stamps: tuple[int, ...],
    resume: int | None,
    max_timestamp: int | None,
    kept: int,
    next_max: int | None,
) -> None:
    tasks = _tasks(*stamps)
    answer, then = continue_from(tasks, resume, max_timestamp)
    assert answer == tasks[:kept]
    assert then == next_max
