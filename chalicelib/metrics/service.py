"""Job metrics, the running part: count each ended job, and read the counts back.

`JobMetrics.observe` is the `JobStore` observer: it is told once of every
terminal write, after the write succeeded. It adds the job to the per-minute
counters (one atomic UpdateItem per minute and action) and, in Lambda, prints
one CloudWatch EMF line. Inside `batched()` (an executor invocation) the
counts wait for the end of the batch and are written together. A crash before
the counter update loses those counts; the jobs themselves are already safe
(docs/observability.md).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

logger = logging.getLogger("tickwork.metrics")


class MetricSink(Protocol):
    def add(self, samples: list[Sample]) -> None: ...

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
        self._lock = threading.Lock()
        #: Batches open now, and the samples waiting for the first to close.
        self._open = 0
        self._pending: list[Sample] = []

    def observe(self, stored: StoredJob, status: JobStatus, now: datetime) -> None:
        """Count a job that just ended (a `JobObserver`)."""
        sample = sample_of(stored.job, status, now)
        with self._lock:
            waits = self._open > 0
            if waits:
                self._pending.append(sample)
        try:
            if not waits:
                self._store.add([sample])
        finally:  # CloudWatch still gets the job when the table write fails
            if self._emf is not None:
                self._emf(emf_line(sample))

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Jobs that end inside are counted together when it closes: one write
        per minute and action rather than one per job (ten runs of one action
        in an SQS batch are one UpdateItem). Batches may overlap (the local
        stack's workers share these metrics): each close writes whatever is
        pending, so no count waits past the end of its own batch. A failed
        write is logged, never raised: the jobs are recorded already."""
        with self._lock:
            self._open += 1
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                pending, self._pending = self._pending, []
            if pending:
                try:
                    self._store.add(pending)
                except Exception:
                    logger.exception("metrics: %d counts not written", len(pending))

    def summary(self, window_s: int) -> MetricsSummary:
        """Jobs that ended in the last `window_s` seconds, stage-wide."""
        now = self._clock.now()
        rows = self._store.rows(window_start(now, window_s), now)
        return summarize(rows, now=now, window_s=window_s)
