"""Lambda entry points other than HTTP routes: the tick and its shards, the executor, the DLQ.

`app.py` registers these; each is a line or two over the services.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.executor import RemainingTime
from chalicelib.messaging import ShardMessage
from chalicelib.services import services
from chalicelib.settings import Settings

#: Queue names are fixed at deploy time from the stage (`TICKWORK_STAGE`).
JOBS_QUEUE = Settings.from_env().queue_name("jobs")
DEAD_LETTER_QUEUE = Settings.from_env().queue_name("jobs-dlq")
TICKS_QUEUE = Settings.from_env().queue_name("ticks")

logger = logging.getLogger("tickwork.tick")


def on_tick(event: Any) -> None:
    """EventBridge rate(1 minute): one shard message per shard to the ticks queue."""
    services().tick.fan_out()


def on_tick_shard(event: Any) -> None:
    """Shard messages (one per invocation as deployed): fire what is due in those
    shards now (the clock's now, not the message's), stopping in time before the
    invocation's deadline. Never raises for a shard's error: the next minute's
    message redoes the pass, and a retried old message would only repeat it."""
    shards: list[int] = []
    for record in event:
        try:
            shards.append(ShardMessage.parse(record.body).shard)
        except ValueError:
            logger.error("tick_shard: dropped a body that is not a shard message")
    report = services().tick.run_shards(shards, _remaining_time(event.context))
    logger.info(
        "tick_shard %s: %d tasks, %d messages, %d cut short, %d errors",
        shards,
        report.tasks_read,
        report.messages_sent,
        report.shards_cut_short,
        len(report.errors),
    )


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
