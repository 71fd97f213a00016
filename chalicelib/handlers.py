"""Lambda entry points other than HTTP routes: the tick, the executor, the DLQ.

`app.py` registers these; each is a line or two over the services.
"""

from __future__ import annotations

from typing import Any

from chalicelib.services import services
from chalicelib.settings import Settings

#: Queue names are fixed at deploy time from the stage (`TICKWORK_STAGE`).
JOBS_QUEUE = Settings.from_env().queue_name("jobs")
DEAD_LETTER_QUEUE = Settings.from_env().queue_name("jobs-dlq")


def on_tick(event: Any) -> None:
    """EventBridge rate(1 minute). The event's own time is not used: the clock is."""
    services().tick.run()


def on_jobs(event: Any) -> None:
    """A batch of up to 10 job messages. Never raises for one record."""
    services().executor.handle_batch([record.body for record in event])


def on_dead_letters(event: Any) -> None:
    records = list(event)
    services().executor.handle_dead_letters(
        [r.body for r in records],
        [int(r.to_dict().get("attributes", {}).get("ApproximateReceiveCount", 0)) for r in records],
    )
