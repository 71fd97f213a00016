"""Job metrics, the pure part: latency buckets, percentiles, samples, the
`/v1/queue/observability/metrics` document and the CloudWatch EMF record.

Nothing here touches AWS or reads a clock. `chalicelib.storage.metrics` keeps
the counters; `chalicelib.metrics.service` feeds them from the job store.

Latencies are counted in a fixed histogram. Bucket 0 holds samples of at
most 1 ms; bucket i (1 <= i <= 80) holds samples in (2^((i-1)/3), 2^(i/3)] ms,
so each bucket's upper bound is 2^(1/3) ≈ 1.26 times its lower bound (three
buckets per doubling); bound 80 is 2^(80/3) ms ≈ 29.6 h, past one day.
Bucket 81 holds anything longer. A reported percentile is the upper bound of
the bucket its rank falls in (rounded up to the microsecond): never below the
true value, and less than one bucket width (x 1.26) above it — except in the
overflow bucket, whose lower bound (≈ 29.6 h) is reported as a floor.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from chalicelib.clock import to_ms
from chalicelib.jobs.model import TERMINAL, Job, JobStatus

#: Upper bound over lower bound of every finite bucket but the first.
BUCKET_RATIO = 2 ** (1 / 3)
#: Upper bounds, in milliseconds, of the finite buckets: 2^(i/3) for i = 0..80.
BOUNDS_MS: tuple[float, ...] = tuple(2 ** (i / 3) for i in range(81))
#: Finite buckets plus the overflow bucket.
BUCKETS = len(BOUNDS_MS) + 1
OVERFLOW = len(BOUNDS_MS)
#: The percentiles the API reports.
PERCENTILES = (50, 95, 99)
#: Outcomes counted, in DESIGN §5's order.
OUTCOMES: tuple[JobStatus, ...] = tuple(s for s in JobStatus if s in TERMINAL)

K = TypeVar("K")

#: CloudWatch namespace of the Embedded Metric Format records.
EMF_NAMESPACE = "Tickwork"


def bucket_of(ms: float) -> int:
    """The histogram bucket of a latency in milliseconds (negative counts as 0)."""
    return bisect_left(BOUNDS_MS, max(0.0, ms))


def upper_bound_ms(bucket: int) -> float:
    """What a percentile falling in `bucket` reports, in milliseconds: its upper
    bound (rounded up to the microsecond), or for the overflow bucket its lower
    bound."""
    return math.ceil(BOUNDS_MS[min(bucket, OVERFLOW - 1)] * 1000) / 1000


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100, nearest rank) of a histogram given as
    {bucket: count}, in milliseconds; None when it holds no sample."""
    total = sum(n for n in counts.values() if n > 0)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total / 100))
    seen = 0
    for bucket in sorted(counts):
        if counts[bucket] > 0:
            seen += counts[bucket]
            if seen >= rank:
                return upper_bound_ms(bucket)
    raise AssertionError("unreachable: rank <= total")


def minute_of(instant: datetime) -> datetime:
    """The start of the minute holding `instant`."""
    return instant.replace(second=0, microsecond=0)


def window_start(now: datetime, window_s: int) -> datetime:
    """The first minute a window of `window_s` seconds ending at `now` reads:
    every minute that overlaps the window counts, so it may start up to 59 s
    before `now - window_s`."""
    return minute_of(now - timedelta(seconds=window_s))


# ---------------------------------------------------------------- samples
@dataclass(frozen=True)
class Sample:
    """One ended job, as metrics see it. Latencies in ms; None when it did not run."""

    at: datetime
    job_id: str
    project_id: str
    action: str
    outcome: JobStatus
    run_time_ms: float | None
    queue_wait_ms: float | None


def _ms(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds() * 1000)


def sample_of(before: Job, outcome: JobStatus, now: datetime) -> Sample:
    """The sample of a job that moved from `before` to terminal `outcome` at `now`.

    Run time and queue wait are the last attempt's, and only for a job that was
    running when it ended (a job cancelled while it waits for a retry did not
    run since its last attempt): run time is `now - started_at`; queue wait is
    `started_at - max(scheduled_for, enqueued_at)`, so a deferred or retried
    job's own delay does not count as waiting.
    """
    run_time = wait = None
    if before.status is JobStatus.ACTIVE and before.started_at is not None:
        ready = before.scheduled_for
        if before.enqueued_at is not None:
            ready = max(ready, before.enqueued_at)
        run_time = _ms(now - before.started_at)
        wait = _ms(before.started_at - ready)
    return Sample(
        at=now,
        job_id=before.id,
        project_id=before.project_id,
        action=before.action,
        outcome=outcome,
        run_time_ms=run_time,
        queue_wait_ms=wait,
    )


def emf_record(sample: Sample) -> dict[str, Any]:
    """A CloudWatch Embedded Metric Format record of one ended job: `Runs` (Count),
    `RunTime` and `QueueWait` (Milliseconds, only when it ran) under dimensions
    `action` and `outcome`; `job_id` and `project_id` ride along as properties
    (searchable in Logs Insights, not dimensions: too many values)."""
    metrics = [{"Name": "Runs", "Unit": "Count"}]
    values: dict[str, Any] = {"Runs": 1}
    for name, value in (("RunTime", sample.run_time_ms), ("QueueWait", sample.queue_wait_ms)):
        if value is not None:
            metrics.append({"Name": name, "Unit": "Milliseconds"})
            values[name] = round(value, 3)
    return {
        "_aws": {
            "Timestamp": to_ms(sample.at),
            "CloudWatchMetrics": [
                {
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": [["action", "outcome"]],
                    "Metrics": metrics,
                }
            ],
        },
        "action": sample.action,
        "outcome": sample.outcome.value,
        **values,
        "job_id": sample.job_id,
        "project_id": sample.project_id,
    }


def emf_line(sample: Sample) -> str:
    """`emf_record` as the one JSON line CloudWatch Logs turns into metrics."""
    return json.dumps(emf_record(sample), separators=(",", ":"))


# ---------------------------------------------------------------- stored rows
@dataclass(frozen=True)
class MetricRow:
    """The counters of one action in one minute: jobs ended per outcome, and
    histograms {bucket: count} of run time and queue wait."""

    minute: datetime
    action: str
    counts: Mapping[str, int] = field(default_factory=dict)
    run_time: Mapping[int, int] = field(default_factory=dict)
    queue_wait: Mapping[int, int] = field(default_factory=dict)


# ---------------------------------------------------------------- the document
class OutcomeCounts(BaseModel):
    """Jobs that ended, by terminal status."""

    complete: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0
    skipped: int = 0
    expired: int = 0


class Percentiles(BaseModel):
    """Latency percentiles in milliseconds (null: no sample). Each is the upper
    bound of a histogram bucket: at most 2^(1/3) ≈ 1.26 x the true value."""

    p50: float | None
    p95: float | None
    p99: float | None


class ActionMetrics(BaseModel):
    action: str
    counts: OutcomeCounts
    run_time_ms: Percentiles = Field(description="From start to end of the last attempt.")
    queue_wait_ms: Percentiles = Field(
        description="From when the job could start (its time, or when it was queued) to its start."
    )


class MinuteCounts(BaseModel):
    minute: datetime = Field(description="Start of the minute (RFC 3339).")
    counts: OutcomeCounts


class MetricsSummary(BaseModel):
    """Jobs that ended in the window, stage-wide (every project)."""

    window_seconds: int
    since: datetime = Field(description="Start of the first minute counted.")
    until: datetime = Field(description="Now: the end of the window.")
    totals: OutcomeCounts
    run_time_ms: Percentiles
    queue_wait_ms: Percentiles
    actions: list[ActionMetrics] = Field(description="One entry per action seen, by name.")
    series: list[MinuteCounts] = Field(
        description="Jobs ended per minute, oldest first; minutes without any are left out."
    )


def _merge(into: dict[K, int], counts: Mapping[K, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.run_time: dict[int, int] = {}
        self.queue_wait: dict[int, int] = {}

    def add(self, row: MetricRow) -> None:
        _merge(self.counts, row.counts)
        _merge(self.run_time, row.run_time)
        _merge(self.queue_wait, row.queue_wait)

    def outcome_counts(self) -> OutcomeCounts:
        return OutcomeCounts(**{s.value: self.counts.get(s.value, 0) for s in OUTCOMES})


def percentiles(counts: Mapping[int, int]) -> Percentiles:
    p50, p95, p99 = (percentile(counts, q) for q in PERCENTILES)
    return Percentiles(p50=p50, p95=p95, p99=p99)


def summarize(rows: Iterable[MetricRow], *, now: datetime, window_s: int) -> MetricsSummary:
    """The metrics document of the rows whose minute lies in the window ending
    at `now` (rows outside it are ignored)."""
    since = window_start(now, window_s)
    total = _Tally()
    by_action: dict[str, _Tally] = {}
    by_minute: dict[datetime, _Tally] = {}
    for row in rows:
        if not since <= row.minute <= now:
            continue
        total.add(row)
        by_action.setdefault(row.action, _Tally()).add(row)
        by_minute.setdefault(row.minute, _Tally()).add(row)
    return MetricsSummary(
        window_seconds=window_s,
        since=since,
        until=now,
        totals=total.outcome_counts(),
        run_time_ms=percentiles(total.run_time),
        queue_wait_ms=percentiles(total.queue_wait),
        actions=[
            ActionMetrics(
                action=action,
                counts=tally.outcome_counts(),
                run_time_ms=percentiles(tally.run_time),
                queue_wait_ms=percentiles(tally.queue_wait),
            )
            for action, tally in sorted(by_action.items())
        ],
        series=[
            MinuteCounts(minute=minute, counts=tally.outcome_counts())
            for minute, tally in sorted(by_minute.items())
        ],
    )
