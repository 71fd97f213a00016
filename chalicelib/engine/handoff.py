"""Handing a stored job to SQS from a request, without losing it when SQS fails."""

from __future__ import annotations

import logging
from datetime import datetime

from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.storage.jobs import JobStore

logger = logging.getLogger("tickwork.handoff")


def send_stored_job(
    queue: JobQueue, jobs: JobStore, message: JobMessage, delay_s: int, *, now: datetime
) -> None:
    """Send the message of a job the caller has just written. If SQS refuses,
    the job's watchdog instant moves to `now`, so the next tick sends it: the
    job is recorded, and a client told 5xx would submit it again."""
    job_id = message.job_id
    try:
        queue.send(message, delay_s)
    except Exception:
        logger.exception("job %s: SQS send failed; the next tick sends it", job_id)
        stored = jobs.get(job_id)
        if stored is not None and not stored.job.status.terminal:
            jobs.set_due(stored, now, enqueued=None)
