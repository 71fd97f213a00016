"""How the minute's tick starts one pass per shard (docs/deploy.md, "The tick at scale").

As deployed, the tick invokes `tick_shard` asynchronously (`InvocationType:
Event`) once per shard. Lambda queues each event and starts the invocations
side by side at once, within the account's concurrency; an SQS event source
would start at five concurrent invocations and add pollers over the following
minute, too slowly for a minute whose due work needs every shard at once.

An event names its shards and carries no time: the pass fires what is due when
it runs, so Lambda's retry of a failed event, or a late one, repeats a pass,
which write-ahead firing absorbs (DESIGN §2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.settings import Settings

#: Starts the passes of these shards; raises if one could not be started.
StartShards = Callable[[Sequence[int]], None]

#: Invocations the tick makes at once (each is one HTTPS call to Lambda's API).
INVOKERS = 8


def shard_event(shards: Sequence[int]) -> dict[str, Any]:
    """The event of one `tick_shard` invocation."""
    return {"shards": list(shards)}


def shards_of(event: Any) -> list[int]:
    """The shards an event names. Raises ValueError for anything else."""
    shards = event.get("shards") if isinstance(event, dict) else None
    if not isinstance(shards, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shards
    ):
        raise ValueError(f"not a shard event: {str(event)[:200]!r}")
    return shards


def tick_shard_function(stage: str) -> str:
    """The name `chalice deploy` gives the `tick_shard` function of a stage."""
    return f"tickwork-{stage}-tick_shard"


class LambdaShards:
    """One asynchronous invocation of `tick_shard` per shard."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._function = tick_shard_function(settings.stage)

    def start(self, shards: Sequence[int]) -> None:
        with ThreadPoolExecutor(max_workers=INVOKERS, thread_name_prefix="fan-out") as pool:
            answers = list(pool.map(self._invoke, shards))
        refused = [shard for shard, status in zip(shards, answers, strict=True) if status != 202]
        if refused:
            raise RuntimeError(f"Lambda did not queue the pass of shard(s) {refused}")

    def _invoke(self, shard: int) -> int:
        from chalicelib.actions import aws  # its botocore clients are shared and thread-safe

        answer = aws.client(self._settings, "lambda").invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps(shard_event([shard])).encode(),
        )
        return int(answer["StatusCode"])
