"""Lambda entry points other than HTTP routes: the tick, the executor, the DLQ.

`app.py` registers these; each is a line or two over the services.
"""

from __future__ import annotations

from typing import Any

from chalicelib.executor import RemainingTime
from chalicelib.services import services
from chalicelib.settings import Settings

#: Queue names are fixed at deploy time from the stage (`TICKWORK_STAGE`).
JOBS_QUEUE = Settings.from_env().queue_name("jobs")
DEAD_LETTER_QUEUE = Settings.from_env().queue_name("jobs-dlq")


def on_tick(event: Any) -> None:
    """EventBridge rate(1 minute). The event's own time is not used: the clock is."""
    services().tick.run()


def on_jobs(event: Any) -> dict[str, Any]:
    """A batch of up to 10 job messages. Never raises for one record: answers the
    records SQS must deliver again as a partial batch failure (the event source
    has `ReportBatchItemFailures`; docs/deploy.md), and acknowledges the rest."""
    records = list(event)
    remaining_s = _remaining_time(event.context)
    again = services().executor.handle_batch([r.body for r in records], remaining_s)
    return {
        "batchItemFailures": [{"itemIdentifier": records[i].to_dict()["messageId"]} for i in again]
    }


def _remaining_time(context: Any) -> RemainingTime | None:
    """The invocation's seconds left, from Lambda's context (or the local stack's)."""
    if context is None:
        return None
    return lambda: float(context.get_remaining_time_in_millis()) / 1000


def on_dead_letters(event: Any) -> None:
    records = list(event)
    services().executor.handle_dead_letters(
        [r.body for r in records],
        [int(r.to_dict().get("attributes", {}).get("ApproximateReceiveCount", 0)) for r in records],
    )
