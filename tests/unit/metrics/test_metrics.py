"""Job metrics, the pure part: buckets, percentiles, samples, the document, EMF."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.metrics.model import (
    BOUNDS_MS,
    BUCKET_RATIO,
    BUCKETS,
    OVERFLOW,
    MetricRow,
    Sample,
    bucket_of,
    emf_line,
    percentile,
    sample_of,
    summarize,
    upper_bound_ms,
    window_start,
)
from chalicelib.metrics.service import JobMetrics
from chalicelib.storage.stored_jobs import RunPolicy, StoredJob

T0 = datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC)
DAY_MS = 86_400_000


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


# ---------------------------------------------------------------- buckets
def test_bounds_grow_by_one_ratio_from_1_ms_past_one_day() -> None:
    assert BOUNDS_MS[0] == 1
    assert BOUNDS_MS[-1] >= DAY_MS > BOUNDS_MS[-2]
    ratios = [b / a for a, b in itertools.pairwise(BOUNDS_MS)]
    assert all(r == pytest.approx(BUCKET_RATIO) for r in ratios)
    assert 1.25 <= BUCKET_RATIO <= 1.5
    assert BUCKETS == OVERFLOW + 1 == 82


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [
        (-5, 0),  # a clock step backwards counts as no time
        (0, 0),
        (0.4, 0),
        (1, 0),
        (1.001, 1),
        (2, 3),  # exactly a bound: that bucket
        (2.001, 4),
        (40, 16),
        (512, 27),
        (513, 28),
        (3000, 35),
        (60_000, 48),
        (DAY_MS, 80),
        (BOUNDS_MS[-1], 80),
        (BOUNDS_MS[-1] + 1, OVERFLOW),
        (10 * DAY_MS, OVERFLOW),
    ],
)
def test_bucket_of(ms: float, bucket: int) -> None:
    assert bucket_of(ms) == bucket


@pytest.mark.parametrize(
    "ms", [0.5, 1, 1.3, 7, 40, 99.9, 250, 512, 3000, 61_234, 3_600_000, DAY_MS]
)
def test_a_bucket_reports_within_one_width_above_the_value(ms: float) -> None:
    reported = upper_bound_ms(bucket_of(ms))
    assert ms <= reported < max(ms, 1) * BUCKET_RATIO


def test_the_overflow_bucket_reports_its_lower_bound() -> None:
    assert upper_bound_ms(OVERFLOW) == pytest.approx(BOUNDS_MS[-1], abs=0.001)


# ---------------------------------------------------------------- percentiles
def hist(*values_ms: float) -> dict[int, int]:
    counts: dict[int, int] = {}
    for ms in values_ms:
        counts[bucket_of(ms)] = counts.get(bucket_of(ms), 0) + 1
    return counts


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ((40,), 50, 40),
        ((40,), 99, 40),
        ((40, 40, 40, 3000), 50, 40),  # rank 2
        ((40, 40, 40, 3000), 75, 40),  # rank 3
        ((40, 40, 40, 3000), 95, 3000),  # rank 4
        ((10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 50, 50),  # rank 5
        ((10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 95, 100),  # rank 10
        (tuple(range(1, 101)), 95, 95),
        (tuple(range(1, 101)), 99, 99),
        (tuple(range(1, 101)), 100, 100),
        ((5,) * 99 + (60_000,), 99, 5),  # rank 99 of 100
        ((5,) * 98 + (60_000,) * 2, 99, 60_000),
    ],
)
def test_percentile_is_the_bound_of_the_bucket_of_the_nearest_rank(
    values: tuple[float, ...], q: float, expected: float
) -> None:
    reported = percentile(hist(*values), q)
    assert reported is not None
    assert expected <= reported < expected * BUCKET_RATIO


@pytest.mark.parametrize("counts", [{}, {3: 0}, {3: 0, 9: 0}])
def test_no_sample_has_no_percentile(counts: dict[int, int]) -> None:
    assert percentile(counts, 50) is None


# ---------------------------------------------------------------- samples
def job(status: JobStatus, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": "job_1",
        "project_id": "acme",
        "action": "echo",
        "status": status,
        "trigger": Trigger.API,
        "scheduled_for": at(),
        "enqueued_at": at(),
        "timestamp_ms": 0,
        **fields,
    }
    return Job(**values)


@pytest.mark.parametrize(
    ("before", "outcome", "run_ms", "wait_ms"),
    [
        # ran: started 2 s after its time, ended 5 s later
        (job(JobStatus.ACTIVE, started_at=at(seconds=2)), JobStatus.COMPLETE, 5000, 2000),
        # queued (enqueued) after its time: the wait counts from the enqueue
        (
            job(JobStatus.ACTIVE, enqueued_at=at(seconds=1.5), started_at=at(seconds=2)),
            JobStatus.FAILED,
            5000,
            500,
        ),
        # a retry: scheduled_for is the retry's time, the old enqueue is older
        (
            job(
                JobStatus.ACTIVE,
                enqueued_at=at(seconds=-60),
                scheduled_for=at(seconds=1),
                started_at=at(seconds=2),
            ),
            JobStatus.CANCELLED,
            5000,
            1000,
        ),
        # a start before its enqueue note (a re-send) waits no time
        (
            job(JobStatus.ACTIVE, enqueued_at=at(seconds=3), started_at=at(seconds=2)),
            JobStatus.COMPLETE,
            5000,
            0,
        ),
        # never started
        (job(JobStatus.QUEUED), JobStatus.CANCELLED, None, None),
        (job(JobStatus.SCHEDULED), JobStatus.SKIPPED, None, None),
        (job(JobStatus.AWAITING_APPROVAL), JobStatus.REJECTED, None, None),
        # waiting for a retry: its last attempt's run ended long ago
        (job(JobStatus.SCHEDULED, started_at=at()), JobStatus.EXPIRED, None, None),
    ],
)
def test_sample_of_an_ended_job(
    before: Job, outcome: JobStatus, run_ms: float | None, wait_ms: float | None
) -> None:
    sample = sample_of(before, outcome, at(seconds=7))
    assert (sample.action, sample.outcome, sample.at) == ("echo", outcome, at(seconds=7))
    assert (sample.run_time_ms, sample.queue_wait_ms) == (run_ms, wait_ms)


# ---------------------------------------------------------------- EMF
def test_emf_line_of_a_run_declares_three_metrics_under_action_and_outcome() -> None:
    sample = Sample(at(seconds=7), "job_1", "acme", "echo", JobStatus.COMPLETE, 5000.0, 2000.0)
    line = emf_line(sample)
    assert "\n" not in line
    record = json.loads(line)
    assert record == {
        "_aws": {
            "Timestamp": int(at(seconds=7).timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "Tickwork",
                    "Dimensions": [["action", "outcome"]],
                    "Metrics": [
                        {"Name": "Runs", "Unit": "Count"},
                        {"Name": "RunTime", "Unit": "Milliseconds"},
                        {"Name": "QueueWait", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "action": "echo",
        "outcome": "complete",
        "Runs": 1,
        "RunTime": 5000.0,
        "QueueWait": 2000.0,
        "job_id": "job_1",
        "project_id": "acme",
    }


def test_emf_line_of_a_job_that_never_ran_has_only_runs() -> None:
    sample = Sample(at(), "job_1", "acme", "echo", JobStatus.CANCELLED, None, None)
    record = json.loads(emf_line(sample))
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "Runs", "Unit": "Count"}]
    assert (record["Runs"], record["outcome"]) == (1, "cancelled")
    assert "RunTime" not in record and "QueueWait" not in record
    # every declared metric and dimension has its value at the root (EMF's rule)
    for name in [m["Name"] for m in directive["Metrics"]] + directive["Dimensions"][0]:
        assert name in record


# ---------------------------------------------------------------- the document
def row(minute: float, action: str, **counts: int) -> MetricRow:
    return MetricRow(minute=at(minutes=minute), action=action, counts=counts)


def test_summarize_adds_rows_up_by_outcome_action_and_minute() -> None:
    rows = [
        MetricRow(at(minutes=1), "echo", {"complete": 3, "failed": 1}, hist(40, 40, 40), hist(500)),
        MetricRow(at(minutes=1), "sleep", {"complete": 1}, hist(3000), hist(2000)),
        MetricRow(at(minutes=4), "echo", {"cancelled": 2}),
        MetricRow(at(minutes=4), "echo", {"made_up": 7}),  # unknown outcomes are ignored
    ]
    doc = summarize(rows, now=at(minutes=5, seconds=30), window_s=3600)
    assert doc.window_seconds == 3600
    assert doc.since == at(minutes=-55)
    assert doc.until == at(minutes=5, seconds=30)
    assert doc.totals.model_dump() == {
        "complete": 4,
        "failed": 1,
        "cancelled": 2,
        "rejected": 0,
        "skipped": 0,
        "expired": 0,
    }
    assert doc.run_time_ms.p50 is not None and 40 <= doc.run_time_ms.p50 < 40 * BUCKET_RATIO
    assert doc.run_time_ms.p99 is not None and 3000 <= doc.run_time_ms.p99 < 3000 * BUCKET_RATIO
    assert [a.action for a in doc.actions] == ["echo", "sleep"]
    echo, sleep = doc.actions
    assert (echo.counts.complete, echo.counts.failed, echo.counts.cancelled) == (3, 1, 2)
    assert echo.queue_wait_ms.p95 == upper_bound_ms(bucket_of(500))
    assert sleep.run_time_ms.p50 == upper_bound_ms(bucket_of(3000))
    assert [(m.minute, m.counts.complete, m.counts.cancelled) for m in doc.series] == [
        (at(minutes=1), 4, 0),
        (at(minutes=4), 0, 2),
    ]


def test_summarize_reads_only_minutes_that_overlap_the_window() -> None:
    rows = [row(m, "echo", complete=1) for m in (-2, -1, 0, 1, 2)]
    doc = summarize(rows, now=at(minutes=1, seconds=30), window_s=90)  # from 09:00:00
    assert [m.minute for m in doc.series] == [at(), at(minutes=1)]
    assert doc.totals.complete == 2


def test_an_empty_window_has_zero_counts_and_null_percentiles() -> None:
    doc = summarize([], now=at(), window_s=60)
    assert doc.totals.model_dump() == dict.fromkeys(doc.totals.model_dump(), 0)
    assert doc.run_time_ms.model_dump() == {"p50": None, "p95": None, "p99": None}
    assert (doc.actions, doc.series) == ([], [])


@pytest.mark.parametrize(
    ("now", "window_s", "since"),
    [
        (at(minutes=5, seconds=30), 60, at(minutes=4)),
        (at(minutes=5), 60, at(minutes=4)),
        (at(minutes=5), 3600, at(minutes=-55)),
        (at(seconds=59.9), 86_400, at(minutes=-24 * 60)),
    ],
)
def test_window_start(now: datetime, window_s: int, since: datetime) -> None:
    assert window_start(now, window_s) == since


# ---------------------------------------------------------------- the observer
class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.samples: list[Sample] = []
        self.writes: list[int] = []  # samples per call
        self.fail = fail

    def add(self, samples: list[Sample]) -> None:
        if self.fail:
            raise RuntimeError("throttled")
        self.samples += samples
        self.writes.append(len(samples))

    def rows(self, since: datetime, until: datetime) -> list[MetricRow]:
        return []


class FixedClock:
    def now(self) -> datetime:
        return at()


def stored(before: Job) -> StoredJob:
    return StoredJob(
        job=before,
        policy=RunPolicy(),
        created_at=at(),
        lease_until=None,
        due_at=None,
        log="",
        log_truncated=False,
        result_truncated=False,
    )


def test_the_observer_counts_the_job_and_prints_emf_only_when_asked() -> None:
    ran = stored(job(JobStatus.ACTIVE, started_at=at(seconds=1)))
    lines: list[str] = []
    sink = FakeSink()
    JobMetrics(sink, FixedClock(), emf=lines.append).observe(ran, JobStatus.COMPLETE, at(seconds=3))
    [sample] = sink.samples
    assert (sample.run_time_ms, sample.queue_wait_ms) == (2000, 1000)
    [line] = lines
    assert json.loads(line)["RunTime"] == 2000

    quiet = FakeSink()
    JobMetrics(quiet, FixedClock()).observe(ran, JobStatus.COMPLETE, at(seconds=3))
    assert len(quiet.samples) == 1


def test_emf_is_printed_even_when_the_counter_write_fails() -> None:
    lines: list[str] = []
    metrics = JobMetrics(FakeSink(fail=True), FixedClock(), emf=lines.append)
    with pytest.raises(RuntimeError):  # JobStore logs it; the job stays ended
        metrics.observe(stored(job(JobStatus.QUEUED)), JobStatus.CANCELLED, at())
    assert json.loads(lines[0])["outcome"] == "cancelled"


def test_jobs_ending_in_a_batch_are_counted_together_when_it_closes() -> None:
    sink = FakeSink()
    metrics = JobMetrics(sink, FixedClock())
    with metrics.batched():
        for n in range(3):
            metrics.observe(stored(job(JobStatus.ACTIVE, id=f"job_{n}")), JobStatus.COMPLETE, at())
        assert sink.writes == []  # nothing written while the batch is open
    assert sink.writes == [3]
    metrics.observe(stored(job(JobStatus.QUEUED)), JobStatus.CANCELLED, at())
    assert sink.writes == [3, 1]  # outside a batch: at once


def test_overlapping_batches_each_write_what_is_pending_when_they_close() -> None:
    sink = FakeSink()
    metrics = JobMetrics(sink, FixedClock())
    first, second = metrics.batched(), metrics.batched()
    first.__enter__()
    second.__enter__()
    metrics.observe(stored(job(JobStatus.ACTIVE)), JobStatus.COMPLETE, at())
    first.__exit__(None, None, None)
    assert sink.writes == [1]  # not held until the other batch closes
    metrics.observe(stored(job(JobStatus.ACTIVE, id="job_2")), JobStatus.FAILED, at())
    second.__exit__(None, None, None)
    assert sink.writes == [1, 1]


def test_a_failed_batch_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    metrics = JobMetrics(FakeSink(fail=True), FixedClock())
    with metrics.batched():
        metrics.observe(stored(job(JobStatus.ACTIVE)), JobStatus.COMPLETE, at())
    assert "1 counts not written" in caplog.text
