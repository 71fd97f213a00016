"""AWS requests per cron run: what one firing of a scheduled task costs in API calls.

    .venv/bin/python -m bench.requests_per_run             # 20 every-minute tasks
    .venv/bin/python -m bench.requests_per_run --tasks 50

On moto in this process (ThreadedMotoServer), with the services built as the
functional tests build them (`Services.build(settings, clock=ManualClock, ...)`,
lookahead 0.5 s so the tick at a fire time sends with no SQS delay). K tasks
with `* * * * *` are created through `TaskService.create`; then, for two
consecutive minutes, the tick runs at the fire time and the messages it sent
are handed to `Executor.handle_batch` in batches of `--batch-size` (default 10,
the `execute_jobs` event source's batch size; Lambda's poller hands over what
it received, up to that many), inside `JobMetrics.batched()` as the
`execute_jobs` handler does. `--batch-size 1` is one message per invocation,
the most an idle queue costs. The first minute is cold (clients made, queue URL looked up), the
second is the steady state the table shows.

Every call is counted with a botocore `after-call` hook registered on every
client the code makes (pynamodb's per-model and transaction connections, the
SQS client of `chalicelib.jobs.sqs`), by patching
`botocore.session.Session.create_client` (see `bench._common.CallCounter`).
The benchmark's own receive/delete calls stand in for Lambda's poller and are
counted apart: they are not Tickwork's code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench._common import (
    CallCounter,
    Op,
    Tally,
    fake_aws_credentials,
    moto_stage,
    quiet_logs,
    table,
)
from chalicelib.auth.service import Principal, Role
from chalicelib.clock import ManualClock
from chalicelib.jobs.model import JobStatus
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services

PRINCIPAL = Principal("tok_bench", "bench", Role.MEMBER, "bench")
CREATED_AT = datetime(2027, 1, 4, 9, 0, 30, tzinfo=UTC)
FIRST_FIRE = datetime(2027, 1, 4, 9, 1, 0, tzinfo=UTC)


class Poller:
    """Lambda's SQS event source: receive, then delete what was handled."""

    def __init__(self, endpoint: str, queue_name: str, tickwork: CallCounter) -> None:
        self.sqs: Any = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        tickwork.detach(self.sqs)
        self.counter = CallCounter()
        self.counter.attach(self.sqs)
        self.url: str = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]

    def take(self, expected: int) -> list[str]:
        bodies: list[str] = []
        for _ in range(100):
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                if len(bodies) >= expected:
                    return bodies
                continue
            bodies += [m["Body"] for m in messages]
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        raise RuntimeError(f"got {len(bodies)} of {expected} messages")


def one_minute(
    services: Services,
    clock: ManualClock,
    poller: Poller,
    counter: CallCounter,
    at: datetime,
    k: int,
    batch_size: int,
) -> tuple[Tally, Tally, Tally]:
    """Tick at a fire time, then execute each job it sent. (tick, executor, poller) tallies."""
    clock.set(at)
    with counter.measuring() as tick:
        report = services.tick.run()
    if report.jobs_created != k or report.errors:
        raise RuntimeError(f"tick at {at}: {report}")
    poller.counter.take()
    bodies = poller.take(k)
    executor = Tally()
    for start in range(0, len(bodies), batch_size):
        with counter.measuring() as one, services.metrics.batched():  # as `on_jobs` does
            services.executor.handle_batch(bodies[start : start + batch_size])
        executor = executor + one
    return tick, executor, poller.counter.take()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="every-minute tasks (20)")
    parser.add_argument(
        "--keep-runs",
        type=int,
        help="the tasks' keep_runs (default: the API's, 100); 1 makes every run of the "
        "steady minute prune the previous one",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="messages per executor invocation (10, the event source's batch size)",
    )
    args = parser.parse_args(argv)
    k: int = args.tasks

    fake_aws_credentials()
    quiet_logs()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    counter = CallCounter(attribute=True)
    counter.install()
    with moto_stage() as (settings, endpoint):
        clock = ManualClock(CREATED_AT)
        services = Services.build(settings, clock=clock, sleep=clock.advance)

        counter.take()
        with counter.measuring() as create:
            tasks = [
                services.tasks.create(
                    PRINCIPAL,
                    TaskSpec.model_validate(
                        {
                            "name": f"minutely-{i:03d}",
                            "schedule": "* * * * *",
                            "action": "echo",
                            "args": {"n": i},
                            **({"keep_runs": args.keep_runs} if args.keep_runs else {}),
                        }
                    ),
                )
                for i in range(k)
            ]

        poller = Poller(endpoint, settings.queue_name("jobs"), counter)

        cold = one_minute(services, clock, poller, counter, FIRST_FIRE, k, args.batch_size)
        warm = one_minute(
            services, clock, poller, counter, FIRST_FIRE + timedelta(minutes=1), k, args.batch_size
        )
        clock.set(FIRST_FIRE + timedelta(minutes=1, seconds=30))
        with counter.measuring() as idle:
            services.tick.run()

        statuses: Counter[str] = Counter()
        for task in tasks:
            for job in services.runs.runs(PRINCIPAL, task.id, limit=10, cursor=None).items:
                statuses[job.status.value] += 1
        kept = min(2, args.keep_runs or 2)
        if statuses != Counter({JobStatus.COMPLETE.value: kept * k}):
            raise RuntimeError(f"runs did not all complete: {dict(statuses)}")

    report(k, create, cold, warm, idle)
    return 0


def report(
    k: int,
    create: Tally,
    cold: tuple[Tally, Tally, Tally],
    warm: tuple[Tally, Tally, Tally],
    idle: Tally,
) -> None:
    tick, executor, poller = warm
    ops: list[Op] = sorted(set(tick.calls) | set(executor.calls))

    def per(tally: Tally, op: Op) -> float:
        return tally.calls.get(op, 0) / k

    rows: list[list[object]] = [
        [
            s,
            o,
            tick.calls.get((s, o), 0),
            per(tick, (s, o)),
            per(executor, (s, o)),
            per(tick, (s, o)) + per(executor, (s, o)),
        ]
        for s, o in ops
    ]
    total_tick, total_executor = tick.total(), executor.total()
    rows.append(
        [
            "all",
            "",
            total_tick,
            total_tick / k,
            total_executor / k,
            (total_tick + total_executor) / k,
        ]
    )
    print(f"AWS API calls per cron run, {k} tasks firing every minute (steady minute):")
    print(
        table(
            ["service", "operation", "tick (all)", "tick / task", "executor / job", "per run"],
            rows,
        )
    )
    print()
    print(
        f"DynamoDB items read per run: tick {tick.read() / k:.2f}, executor "
        f"{executor.read() / k:.2f} ("
        + ", ".join(f"{o} {n / k:.2f}" for (_, o), n in sorted(executor.items_scanned.items()))
        + ")"
    )
    print()
    print("Where the calls come from (per fired task / per job):")
    sources = sorted(
        [("tick", *key, n) for key, n in tick.callers.items()]
        + [("executor", *key, n) for key, n in executor.callers.items()]
    )
    print(
        table(
            ["phase", "service", "operation", "code path (innermost first)", "calls"],
            [[phase, s, o, path, n / k] for phase, s, o, path, n in sources],
        )
    )
    print()
    failed = tick.errors + executor.errors
    print(f"Failed calls (conditions etc.) in the steady minute: {dict(failed) or 'none'}")
    print(f"A tick with nothing due: {dict(_named(idle))}")
    print(f"Creating one task (TaskService.create): {_per_k(create, k)}")
    cold_extra = (cold[0] + cold[1]).calls - (tick + executor).calls
    print(f"First (cold) minute, calls beyond the steady one: {dict(_named_counter(cold_extra))}")
    print(
        f"Lambda's poller stand-in (not Tickwork code), per message: {_per_k(poller, k)}"
        " (batches of 10; the real poller also long-polls while idle)"
    )


def _named(tally: Tally) -> Counter[str]:
    return _named_counter(tally.calls)


def _named_counter(calls: Counter[Op]) -> Counter[str]:
    return Counter({f"{s}.{o}": n for (s, o), n in calls.items()})


def _per_k(tally: Tally, k: int) -> str:
    return ", ".join(f"{name} {n / k:.2f}" for name, n in sorted(_named(tally).items()))


if __name__ == "__main__":
    sys.exit(main())
