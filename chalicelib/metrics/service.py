"""Job metrics, the running part: count each ended job, and read the counts back.

`JobMetrics.observe` is the `JobStore` observer: it is told once of every
terminal write, after the write succeeded. It adds the job to the per-minute
counters (one atomic UpdateItem) and, in Lambda, prints one CloudWatch EMF
line. A crash between the job's terminal write and the counter update loses
that one count; the job itself is already safe (docs/observability.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from chalicelib.clock import Clock
from chalicelib.jobs.model import JobStatus
from chalicelib.metrics.model import (
    MetricRow,
    MetricsSummary,
    Sample,
    emf_line,
    sample_of,
    summarize,
    window_start,
)
from chalicelib.storage.stored_jobs import StoredJob


class MetricSink(Protocol):
    def add(self, sample: Sample) -> None: ...

    def rows(self, since: datetime, until: datetime) -> list[MetricRow]: ...


def write_line(line: str) -> None:
    """Print one line to stdout, where Lambda sends it to CloudWatch Logs as one event."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class JobMetrics:
    def __init__(
        self, store: MetricSink, clock: Clock, *, emf: Callable[[str], None] | None = None
    ) -> None:
        """`emf` receives one EMF JSON line per ended job (None: no EMF, outside Lambda)."""
        self._store = store
        self._clock = clock
        self._emf = emf

    def observe(self, stored: StoredJob, status: JobStatus, now: datetime) -> None:
        """Count a job that just ended (a `JobObserver`)."""
        sample = sample_of(stored.job, status, now)
        try:
            self._store.add(sample)
        finally:  # CloudWatch still gets the job when the table write fails
            if self._emf is not None:
                self._emf(emf_line(sample))

    def summary(self, window_s: int) -> MetricsSummary:
        """Jobs that ended in the last `window_s` seconds, stage-wide."""
        now = self._clock.now()
        rows = self._store.rows(window_start(now, window_s), now)
        return summarize(rows, now=now, window_s=window_s)
