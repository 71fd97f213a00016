"""Lambda entry points other than HTTP routes: the tick and its shards, the executor, the DLQ.

`app.py` registers these; each is a line or two over the services. Nothing
here reads the environment when imported: the SQS event sources' queue names
come from `settings.deploy_time()`, which `app.py` reads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.engine.fanout import shards_of
from chalicelib.wiring import services

if TYPE_CHECKING:
    # A type only: importing the executor here would load it into every function.
    from chalicelib.engine.executor import RemainingTime

logger = logging.getLogger("tickwork.tick")
#: One summary line per shard pass: CloudWatch keeps it; the local stack shows it
#: with TICKWORK_LOG=debug only (a line per shard every tick would drown the runs).
pass_log = logging.getLogger("tickwork.tick.passes")


def on_tick(event: Any) -> None:
    """EventBridge rate(1 minute): start one `tick_shard` pass per shard."""
    services().tick.fan_out()


def on_tick_shard(event: Any, context: Any) -> dict[str, Any]:
    """An asynchronous invocation by the minute's tick, naming its shards: fire
    what is due in them now (the clock's now, not the event's), stopping in time
    before the invocation's deadline. Never raises for a shard's error: the next
    minute's pass redoes it, and Lambda's retry of this event would only repeat it."""
    try:
        shards = shards_of(event)
    except ValueError:
        logger.error("tick_shard: dropped an event that names no shards")
        return {"shards": []}
    report = services().tick.run_shards(shards, _remaining_time(context))
    pass_log.info(
        "tick_shard %s: %d tasks, %d messages, %d cut short, %d errors",
        shards,
        report.tasks_read,
        report.messages_sent,
        report.shards_cut_short,
        len(report.errors),
    )
    return {"shards": shards, "tasks": report.tasks_read, "messages": report.messages_sent}


def on_jobs(event: Any) -> dict[str, Any]:
    """A batch of up to 10 job messages. Never raises for one record: answers the
    records SQS must deliver again as a partial batch failure (the event source
    has `ReportBatchItemFailures`; docs/deploy.md), and acknowledges the rest."""
    records = list(event)
    remaining_s = _remaining_time(event.context)
    running = services()
    with running.metrics.batched():  # one counter write per minute and action
        again = running.executor.handle_batch([r.body for r in records], remaining_s)
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
