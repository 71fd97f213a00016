"""SQS sends per waiting firing per minute (`on_overlap: queue`).

    .venv/bin/python -m bench.waiting_sends                 # 10 firings wait, 1 minute
    .venv/bin/python -m bench.waiting_sends --waiting 5 --minutes 3

On moto in this process, services built as the functional tests build them
(fake clock). One task with `on_overlap: queue` (parallelism 1, a yearly
schedule so the tick adds nothing) is triggered once; that run's action holds
the slot (in a thread) until the end of the measured span. Then it is
triggered `--waiting` more times, a simulated second apart, and each of those
firings is delivered and finds the slot taken. Then `--minutes` simulated
minutes pass, second by second: every message that is due by the fake clock
is handed to `Executor.handle_batch`, and the tick runs every 5 s. Finally the
hold is released and the waiting firings are delivered until all have run.

SQS delays are simulated on the fake clock: a botocore hook on every client
notes each message's `DelaySeconds` and sends it with 0, and the script
delivers it once the fake clock reaches its time (moto counts delays in real
seconds). Every send is still a real call to moto, counted by
`bench._common.CallCounter`.

Printed: SQS calls and messages sent during the measured span, per waiting
firing per simulated minute; the sends from the release to the last start;
and the simulated seconds that took.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
from pydantic import BaseModel, ConfigDict

from bench._common import CallCounter, Tally, fake_aws_credentials, moto_stage, quiet_logs, table
from chalicelib.actions import Action, ActionContext, Registry
from chalicelib.actions.builtin import BUILTIN
from chalicelib.auth.service import Principal, Role
from chalicelib.clock import ManualClock
from chalicelib.jobs.model import JobStatus
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services

PRINCIPAL = Principal("tok_bench", "bench", Role.MEMBER, "bench")
START = datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC)
TICK_EVERY_S = 5


class HoldArgs(BaseModel):
    model_config = ConfigDict(extra="allow")


class SimulatedDelays:
    """SQS's DelaySeconds on the fake clock: every message is sent with delay 0
    and delivered by `due()` once the clock reaches the delay it asked for."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self.messages = 0

    def install(self) -> None:
        original = botocore.session.Session.create_client
        hook = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            if client.meta.service_model.service_name == "sqs":
                client.meta.events.register(
                    "before-parameter-build.sqs.SendMessage", hook._one, unique_id="sim-one"
                )
                client.meta.events.register(
                    "before-parameter-build.sqs.SendMessageBatch", hook._batch, unique_id="sim-b"
                )
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[assignment,method-assign]

    def _note(self, entry: dict[str, Any]) -> None:
        at = self._clock.now() + timedelta(seconds=int(entry.get("DelaySeconds", 0)))
        entry["DelaySeconds"] = 0
        with self._lock:
            heapq.heappush(self._pending, (at, next(self._order), entry["MessageBody"]))
            self.messages += 1

    def _one(self, params: dict[str, Any], **_: Any) -> None:
        self._note(params)

    def _batch(self, params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            self._note(entry)

    def due(self) -> list[str]:
        now = self._clock.now()
        taken: list[str] = []
        with self._lock:
            while self._pending and self._pending[0][0] <= now:
                taken.append(heapq.heappop(self._pending)[2])
        return taken


def drain(sqs: Any, url: str) -> None:
    """Keep moto's queue shallow: the script delivers from `SimulatedDelays`."""
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiting", type=int, default=10, help="firings that wait (10)")
    parser.add_argument("--minutes", type=int, default=1, help="simulated minutes measured (1)")
    args = parser.parse_args(argv)
    n: int = args.waiting

    fake_aws_credentials()
    quiet_logs()
    clock = ManualClock(START)
    delays = SimulatedDelays(clock)
    delays.install()
    counter = CallCounter()
    counter.install()
    hold = threading.Event()

    def hold_slot(ctx: ActionContext, args: HoldArgs) -> Any:
        while not hold.wait(0.01) and not ctx.cancelled:
            pass
        return {"held": True}

    try:
        with moto_stage() as (settings, endpoint):
            services = Services.build(
                settings,
                clock=clock,
                actions=Registry([*BUILTIN, Action("hold", HoldArgs, hold_slot)]),
                sleep=clock.advance,
            )
            sqs: Any = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
            counter.detach(sqs)
            url = services.sqs.url("jobs")
            spec: dict[str, Any] = {
                "name": "held",
                "schedule": "0 0 1 1 *",
                "action": "hold",
                "on_overlap": "queue",
            }
            if "queue_max" in TaskSpec.model_fields:  # the field this benchmark is about
                spec["queue_max"] = max(n, 10)
            task = services.tasks.create(PRINCIPAL, TaskSpec.model_validate(spec))

            def deliver_due(step_s: float = 0.0) -> None:
                while bodies := delays.due():
                    drain(sqs, url)
                    for body in bodies:
                        clock.advance(step_s)  # after the release: tells apart who started first
                        services.executor.handle_batch([body])

            holder = services.runs.trigger(PRINCIPAL, task.id)
            (body,) = delays.due()
            drain(sqs, url)
            running = threading.Thread(target=services.executor.handle_batch, args=([body],))
            running.start()
            for _ in range(n):
                clock.advance(1)
                services.runs.trigger(PRINCIPAL, task.id)
                deliver_due()
            jobs = services.runs.runs(PRINCIPAL, task.id, limit=200, cursor=None).items
            waiting = [j for j in jobs if j.status is JobStatus.SCHEDULED]
            if len(waiting) != n:
                raise RuntimeError(f"expected {n} waiting firings, found {len(waiting)}: {jobs}")

            sent_before = delays.messages
            counter.take()
            with counter.measuring() as span:
                for second in range(60 * args.minutes):
                    clock.advance(1)
                    if second % TICK_EVERY_S == 0:
                        services.tick.run()
                    deliver_due()
            span_messages = delays.messages - sent_before

            sent_before = delays.messages
            released_at = clock.now()
            with counter.measuring() as after:
                hold.set()
                running.join(30)
                for _ in range(600):
                    deliver_due(step_s=0.001)
                    jobs = services.runs.runs(PRINCIPAL, task.id, limit=200, cursor=None).items
                    if all(j.status is JobStatus.COMPLETE for j in jobs):
                        break
                    clock.advance(1)
            after_messages = delays.messages - sent_before
            statuses = sorted(j.status.value for j in jobs)
            if statuses != ["complete"] * (n + 1):
                raise RuntimeError(f"runs did not all complete: {statuses}")
            order = [j.id for j in sorted(jobs, key=lambda j: j.started_at or START)]
            fired = [j.id for j in sorted(jobs, key=lambda j: j.scheduled_for)]
            drained_s = (clock.now() - released_at).total_seconds()
    finally:
        hold.set()

    report(n, args.minutes, span, span_messages, after, after_messages, drained_s)
    print(f"Holder {holder.id} then the waiting firings in fire order: {order == fired}")
    return 0


def _sqs_calls(tally: Tally) -> int:
    return tally.total("sqs") - tally.calls.get(("sqs", "GetQueueUrl"), 0)


def report(
    n: int,
    minutes: int,
    span: Tally,
    span_messages: int,
    after: Tally,
    after_messages: int,
    drained_s: float,
) -> None:
    per = n * minutes
    print(f"{n} firings wait for {minutes} simulated minute(s) while one run holds the slot:")
    print(
        table(
            ["measured", "SQS send calls", "messages", "per waiting firing per minute"],
            [
                ["while waiting", _sqs_calls(span), span_messages, span_messages / per],
                ["release → all ran", _sqs_calls(after), after_messages, after_messages / n],
            ],
        )
    )
    print(f"(the second row is per waiting firing, not per minute; {drained_s:.0f} simulated s)")
    dynamo = span.total("dynamodb")
    ops = ", ".join(f"{o} {c}" for (svc, o), c in sorted(span.calls.items()) if svc == "dynamodb")
    print(
        f"DynamoDB calls while waiting: {dynamo} ({dynamo / per:.2f} per firing per minute: {ops})"
    )


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.exit(main())
