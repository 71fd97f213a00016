"""What a cron run, a queue job and an idle minute cost on AWS, at list prices.

    .venv/bin/python -m bench.cost_table                 # prints a markdown table to paste
    .venv/bin/python -m bench.cost_table --log-bytes 10240 --batch-size 1

Nothing here is typed in but the prices and the stated assumptions (latencies, the
idle polls of Lambda's SQS pollers): the counts come from running the other
benchmarks' measuring functions, at the shard count and memory sizes
`.chalice/config.json` deploys (read from it):

* `bench.requests_per_run.measure`: AWS requests by operation of a cron run (two
  minutes of `--tasks` every-minute tasks, the second reported), of a queue job
  (`--queue-jobs` `echo` jobs submitted through the API's route, then executed) and
  of a tick with nothing due over every shard; with them, the wall and CPU time of
  each executor invocation, of the tick and of each API request, on moto in this
  process (moto's own CPU is left out of ours: `bench._common.InProcessMotoCpu`), and
  the minute's fan-out to every shard (asynchronous Invoke calls to moto).
* `bench.write_units.measure`: DynamoDB write and read request units of the same
  runs and jobs with a `--log-bytes` log, index writes included, from AWS's sizing
  rules, by table and index as that benchmark reports them.

A cron run and a queue job are what each adds: the tick's shard Queries happen every
minute whatever is due, so the measured tick with nothing due is taken off the cron
minute's and counted once, as the idle cost.

Lambda bills each invocation's duration (rounded up to the millisecond) times its
memory. Durations measured against moto on this machine say little about AWS (moto
answers in its own time, in this process), so the dollars use an estimate: our own
CPU time (`time.process_time`, without moto's) plus a stated latency per AWS request
(`--dynamodb-ms`, `--sqs-ms`, `--lambda-ms`), taken one after another (an upper
bound: the executor's lanes and the tick's groups wait side by side), plus, for a
cron firing, the executor's wait for its second: the tick sends a firing to arrive
`ARRIVE_EARLY_S` to `ARRIVE_EARLY_S` + 1 s early (`chalicelib.jobs.sqs.delay_until`)
and the executor waits out the rest, half a second past `ARRIVE_EARLY_S` on average,
once per invocation (the receive's own latency, not known here, is taken as none).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import requests_per_run, write_units
from bench._common import ROOT, Tally, machine_facts
from chalicelib.engine.fanout import INVOKERS
from chalicelib.jobs.sqs import ARRIVE_EARLY_S
from chalicelib.settings import Settings

# ---------------------------------------------------------------- prices (the one place)
#: The day the prices below were cited. They are the us-east-1 list prices as known
#: that day; this machine has no internet access, so the pages were not re-read here.
PRICES_CITED = "2026-12-08"


@dataclass(frozen=True)
class Prices:
    """US dollars, us-east-1, no free tier applied."""

    #: DynamoDB on-demand, per million write / read request units. AWS halved both
    #: from 2024-11-01 (they had long been $1.25 and $0.25): "Amazon DynamoDB reduces
    #: prices for on-demand throughput and global tables", AWS What's New, November 2024.
    dynamodb_wru_per_million: float = 0.625
    dynamodb_rru_per_million: float = 0.125
    #: SQS standard queues, per million requests (first 100 billion a month, after the
    #: free million); each 64 KB chunk of a request's payload is billed as one request.
    sqs_per_million: float = 0.40
    #: Lambda (x86), per million requests and per GB-second of duration.
    lambda_per_million: float = 0.20
    lambda_per_gb_s: float = 0.0000166667
    #: API Gateway REST API (what Chalice deploys), per million requests (first 333 M).
    api_gateway_per_million: float = 3.50
    #: EventBridge Scheduler, per million invocations (after 14 M free a month): for
    #: comparison only. The `tick`'s EventBridge scheduled rule is free.
    scheduler_per_million: float = 1.00


PRICES = Prices()

#: The pages the prices are from.
PRICE_PAGES = (
    ("DynamoDB on-demand", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    (
        "DynamoDB price cut",
        "https://aws.amazon.com/about-aws/whats-new/2024/11/amazon-dynamo-db-reduces-prices-on-demand-throughput-global-tables/",
    ),
    ("SQS", "https://aws.amazon.com/sqs/pricing/"),
    ("Lambda", "https://aws.amazon.com/lambda/pricing/"),
    ("API Gateway", "https://aws.amazon.com/api-gateway/pricing/"),
    ("EventBridge (Scheduler, rules)", "https://aws.amazon.com/eventbridge/pricing/"),
)

#: The functions a unit of work runs in (their memory is read from the config).
FUNCTIONS = ("api_handler", "tick", "tick_shard", "execute_jobs")
#: `rate(1 minute)` over a 30-day month.
TICKS_PER_MONTH = 30 * 24 * 60
#: SQS bills a request per 64 KB chunk of its payload.
SQS_CHUNK_BYTES = 64 * 1024
#: Lambda's SQS pollers keep long-polling an empty queue, billed as ReceiveMessage
#: requests to the account. AWS does not publish their idle rate; assumed: five
#: pollers per event source, each a 20 s long poll after another.
IDLE_POLLERS = 5
LONG_POLL_S = 20
#: The mean of what the executor waits for a cron firing's second (see the docstring).
EARLY_WAIT_S = ARRIVE_EARLY_S + 0.5


# ---------------------------------------------------------------- the arithmetic (pure)
def gb_seconds(duration_s: float, memory_mb: int) -> float:
    """Lambda GB-seconds of one invocation: its duration rounded up to the millisecond,
    times its memory in GB (Lambda's GB is 1024 MB)."""
    return math.ceil(round(duration_s * 1000, 6)) / 1000 * memory_mb / 1024


def estimated_s(
    cpu_s: float,
    requests: Mapping[str, float],
    latency_ms: Mapping[str, float],
    *,
    in_flight: Mapping[str, int] | None = None,
    wait_s: float = 0.0,
) -> float:
    """An invocation's duration on AWS: our CPU seconds, plus the stated latency of each
    request by service (divided by the requests a service has `in_flight` at once,
    default one after another), plus `wait_s` of waiting."""
    waiting = sum(
        n * latency_ms[service] / 1000 / (in_flight or {}).get(service, 1)
        for service, n in requests.items()
    )
    return cpu_s + waiting + wait_s


@dataclass(frozen=True)
class Usage:
    """Billed quantities per unit of work (a cron run, a queue job, an idle tick)."""

    wru: float = 0.0
    rru: float = 0.0
    sqs_requests: float = 0.0
    lambda_requests: float = 0.0
    lambda_gb_s: float = 0.0
    api_requests: float = 0.0


#: The dollar lines: label, Usage field, Prices field (per million, or per GB-second).
LINES = (
    ("DynamoDB write request units", "wru", "dynamodb_wru_per_million"),
    ("DynamoDB read request units", "rru", "dynamodb_rru_per_million"),
    ("SQS requests", "sqs_requests", "sqs_per_million"),
    ("Lambda requests", "lambda_requests", "lambda_per_million"),
    ("Lambda duration (GB-s, estimated)", "lambda_gb_s", "lambda_per_gb_s"),
    ("API Gateway requests", "api_requests", "api_gateway_per_million"),
)


def dollars(usage: Usage, prices: Prices, units: float) -> dict[str, float]:
    """Dollars by line for `units` units of work (a million runs, a month's ticks)."""
    out = {}
    for label, quantity, price in LINES:
        rate = getattr(prices, price)
        per_unit = getattr(usage, quantity) * (rate if quantity == "lambda_gb_s" else rate / 1e6)
        out[label] = per_unit * units
    return out


def sqs_requests(payload_bytes: int) -> int:
    """Requests SQS bills for one request of this payload: one per 64 KB chunk."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def idle_poll_requests(event_sources: int, seconds: float) -> float:
    """ReceiveMessage requests Lambda's pollers make on empty queues over `seconds`."""
    return event_sources * IDLE_POLLERS * seconds / LONG_POLL_S


# ---------------------------------------------------------------- the deployed configuration
def chalice_config(path: Path = ROOT / ".chalice" / "config.json") -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def function_setting(config: Mapping[str, Any], stage: str, function: str, key: str) -> Any:
    """A function's setting as Chalice resolves it: the stage's function entry, the
    stage, the top-level function entry, then the top level."""
    staged = config.get("stages", {}).get(stage, {})
    for scope in (
        staged.get("lambda_functions", {}).get(function, {}),
        staged,
        config.get("lambda_functions", {}).get(function, {}),
        config,
    ):
        if key in scope:
            return scope[key]
    raise KeyError(f"{key} of {function} in stage {stage}")


def memory_mb(config: Mapping[str, Any], stage: str, function: str) -> int:
    return int(function_setting(config, stage, function, "lambda_memory_size"))


def deployed_shards(config: Mapping[str, Any], stage: str) -> int:
    """`TICKWORK_DUE_SHARDS` as the stage deploys it (Settings' default without it)."""
    env = {
        **config.get("environment_variables", {}),
        **config.get("stages", {}).get(stage, {}).get("environment_variables", {}),
    }
    return int(env.get("TICKWORK_DUE_SHARDS", Settings.due_shards))


# ---------------------------------------------------------------- from the measurements
@dataclass(frozen=True)
class LambdaLine:
    """One function's share of a unit of work."""

    unit: str
    function: str
    memory_mb: int
    #: Invocations per unit of work (0: it adds time to invocations counted elsewhere).
    invocations: float
    #: Per invocation (or, with no invocations, per unit): measured against moto.
    wall_s: float
    cpu_s: float
    requests: Mapping[str, float]
    estimated_s: float
    gb_s: float
    note: str = ""
    #: The in-process moto's CPU meanwhile, left out of `cpu_s`.
    moto_cpu_s: float = 0.0


@dataclass
class Unit:
    """A unit of work's usage, with what it is made of."""

    name: str
    dynamodb: dict[str, float] = field(default_factory=dict)  # requests by operation
    sqs: dict[str, float] = field(default_factory=dict)
    wru_table: float = 0.0
    wru_index: float = 0.0
    rru: float = 0.0
    lambdas: list[LambdaLine] = field(default_factory=list)
    api_requests: float = 0.0
    extra_sqs: float = 0.0  # the idle pollers (assumed)

    def usage(self) -> Usage:
        return Usage(
            wru=self.wru_table + self.wru_index,
            rru=self.rru,
            sqs_requests=sum(self.sqs.values()) + self.extra_sqs,
            lambda_requests=sum(line.invocations for line in self.lambdas),
            lambda_gb_s=sum(line.gb_s for line in self.lambdas),
            api_requests=self.api_requests,
        )


def by_service(calls: Mapping[tuple[str, str], int], service: str, per: float) -> dict[str, float]:
    """Requests of one service by operation, divided by `per` (the units of work)."""
    return {op: n / per for (s, op), n in calls.items() if s == service and n}


def plus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}


def services_of(calls: Mapping[tuple[str, str], int]) -> dict[str, float]:
    """Requests by service."""
    found: dict[str, float] = {}
    for (service, _), n in calls.items():
        found[service] = found.get(service, 0.0) + n
    return found


def difference(a: Tally, b: Tally) -> Counter[tuple[str, str]]:
    """Calls of `a` beyond those of `b` (negative counts kept, so nothing hides)."""
    out: Counter[tuple[str, str]] = Counter()
    for op in set(a.calls) | set(b.calls):
        out[op] = a.calls.get(op, 0) - b.calls.get(op, 0)
    return out


def unit_totals(*breakdowns: write_units.Breakdown) -> write_units.Units:
    units = write_units.Units()
    for breakdown in breakdowns:
        units.add(write_units.total(breakdown))
    return units


def wru_by_table(per: int, *breakdowns: write_units.Breakdown) -> dict[str, float]:
    """WRU by table (`jobs (table)`) and by index (`jobs.by_task`), whatever tables and
    indexes the breakdowns name, divided by `per` (the units of work)."""
    found: dict[str, float] = {}
    for breakdown in breakdowns:
        for (_, logical, _), units in breakdown.items():
            parts = {f"{logical} (table)": units.table_wcu, **units.index_wcu}
            for name, wru in parts.items():
                if wru:
                    found[name] = found.get(name, 0.0) + wru / per
    return found


@dataclass
class Report:
    args: argparse.Namespace
    shards: int
    cron: Unit
    queue: Unit
    idle: Unit
    wru_cron: dict[str, float]
    wru_queue: dict[str, float]
    largest_body: int
    notes: list[str]
    run_s: float = 0.0


def build(args: argparse.Namespace, config: Mapping[str, Any]) -> Report:
    """Run both measurements at the stage's shard count and price what they counted."""
    shards = args.shards or deployed_shards(config, args.stage)
    latency = {"dynamodb": args.dynamodb_ms, "sqs": args.sqs_ms, "lambda": args.lambda_ms}
    mem = {f: memory_mb(config, args.stage, f) for f in FUNCTIONS}
    requests = requests_per_run.measure(
        tasks=args.tasks,
        batch_size=args.batch_size,
        due_shards=shards,
        fan_out=True,
        queue_jobs=args.queue_jobs,
        attribute=False,
    )
    units = write_units.measure(
        tasks=args.tasks,
        log_bytes=args.log_bytes,
        queue_jobs=args.queue_jobs,
        batch_size=args.batch_size,
        due_shards=shards,
    )
    assert requests.queue is not None
    notes: list[str] = []
    return Report(
        args,
        shards,
        cron_unit(requests, units, mem, latency),
        queue_unit(requests.queue, units, mem, latency, notes),
        idle_unit(requests, units, mem, latency),
        wru_by_table(requests.tasks, units.tick, units.executor),
        wru_by_table(units.queue_jobs, units.submit, units.queue_executor),
        max(requests.warm.largest_body, requests.queue.largest_body),
        notes,
    )


def cron_unit(
    requests: requests_per_run.Measured,
    units: write_units.Measured,
    mem: Mapping[str, int],
    latency: Mapping[str, float],
) -> Unit:
    """A cron run: the steady minute's tick and executor, less a tick with nothing due."""
    k, warm, idle = requests.tasks, requests.warm, requests.idle
    added = difference(warm.tick + warm.executor, idle)
    cron = Unit("cron run")
    cron.dynamodb = by_service(added, "dynamodb", k)
    cron.sqs = plus(by_service(added, "sqs", k), by_service(warm.poller.calls, "sqs", k))
    ran = unit_totals(units.tick, units.executor)
    nothing_due = unit_totals(units.idle)
    cron.wru_table = (ran.table_wcu - nothing_due.table_wcu) / k
    cron.wru_index = (sum(ran.index_wcu.values()) - sum(nothing_due.index_wcu.values())) / k
    cron.rru = (ran.rcu - nothing_due.rcu) / k
    shard_cpu = (warm.tick_time.cpu_s - requests.idle_time.cpu_s) / k
    shard_requests = {s: n / k for s, n in services_of(difference(warm.tick, idle)).items()}
    shard_s = estimated_s(max(shard_cpu, 0.0), shard_requests, latency)
    cron.lambdas.append(
        LambdaLine(
            "cron run",
            "tick_shard",
            mem["tick_shard"],
            0.0,
            (warm.tick_time.wall_s - requests.idle_time.wall_s) / k,
            shard_cpu,
            shard_requests,
            shard_s,
            shard_s * mem["tick_shard"] / 1024,
            "time added to the minute's passes",
            (warm.tick_time.moto_cpu_s - requests.idle_time.moto_cpu_s) / k,
        )
    )
    cron.lambdas.append(
        executor_line(
            "cron run",
            mem["execute_jobs"],
            warm.executor,
            warm.executor_time,
            k,
            latency,
            EARLY_WAIT_S,
        )
    )
    return cron


def queue_unit(
    queue: requests_per_run.QueueJobs,
    units: write_units.Measured,
    mem: Mapping[str, int],
    latency: Mapping[str, float],
    notes: list[str],
) -> Unit:
    """A queue job: its API request (API Gateway, the API function) and the executor."""
    m = queue.jobs
    q = Unit("queue job")
    q.dynamodb = by_service(queue.api.calls + queue.executor.calls, "dynamodb", m)
    q.sqs = by_service(queue.api.calls + queue.poller.calls, "sqs", m)
    job_units = unit_totals(units.submit, units.queue_executor)
    token_reads = queue.authenticate.calls.get(("dynamodb", "GetItem"), 0)
    # The token read is a consistent GetItem of an item under 4 KB.
    token_rru = token_reads * write_units.read_units(1, consistent=True)
    q.wru_table = job_units.table_wcu / units.queue_jobs
    q.wru_index = sum(job_units.index_wcu.values()) / units.queue_jobs
    q.rru = job_units.rcu / units.queue_jobs + token_rru
    q.api_requests = 1.0
    api_requests = {s: n / m for s, n in services_of(queue.api.calls).items()}
    api_cpu = queue.api_time.cpu_s / m
    api_s = estimated_s(api_cpu, api_requests, latency)
    q.lambdas.append(
        LambdaLine(
            "queue job",
            "api_handler",
            mem["api_handler"],
            1.0,
            queue.api_time.wall_s / m,
            api_cpu,
            api_requests,
            api_s,
            gb_seconds(api_s, mem["api_handler"]),
            "the route, with its token check",
            queue.api_time.moto_cpu_s / m,
        )
    )
    q.lambdas.append(
        executor_line(
            "queue job", mem["execute_jobs"], queue.executor, queue.executor_time, m, latency, 0.0
        )
    )
    # The units are write_units' `QueueService.submit`'s; the API request does that and
    # reads its token. Say so if it did anything else.
    submitted: Counter[str] = Counter()
    for (op, _, _), u in units.submit.items():
        submitted[op] += u.calls
    api_ops = by_service(queue.api.calls, "dynamodb", m)
    auth_ops = by_service(queue.authenticate.calls, "dynamodb", 1)
    for op in sorted(set(api_ops) | set(submitted)):
        covered = submitted[op] / units.queue_jobs + auth_ops.get(op, 0)
        if abs(api_ops.get(op, 0) - covered) > 1e-9:
            notes.append(
                f"The API request made {api_ops.get(op, 0):.2f} {op} per job where the units "
                f"cover {covered:.2f}: the difference is not in the WRU/RRU lines."
            )
    return q


def idle_unit(
    requests: requests_per_run.Measured,
    units: write_units.Measured,
    mem: Mapping[str, int],
    latency: Mapping[str, float],
) -> Unit:
    """An idle tick: the minute's `tick` (its fan-out) and one pass per shard."""
    assert requests.fan_out is not None and requests.fan_out_time is not None
    fan, fan_time, idle, idle_time = (
        requests.fan_out,
        requests.fan_out_time,
        requests.idle,
        requests.idle_time,
    )
    passes = fan.calls.get(("lambda", "Invoke"), 0)
    nothing_due = unit_totals(units.idle)
    i = Unit("idle tick")
    i.dynamodb = by_service(idle.calls, "dynamodb", 1)
    i.sqs = by_service(idle.calls, "sqs", 1)
    i.rru = nothing_due.rcu
    i.wru_table = nothing_due.table_wcu
    i.wru_index = sum(nothing_due.index_wcu.values())
    fan_requests = services_of(fan.calls)
    fan_s = estimated_s(fan_time.cpu_s, fan_requests, latency, in_flight={"lambda": INVOKERS})
    i.lambdas.append(
        LambdaLine(
            "idle tick",
            "tick",
            mem["tick"],
            1.0,
            fan_time.wall_s,
            fan_time.cpu_s,
            fan_requests,
            fan_s,
            gb_seconds(fan_s, mem["tick"]),
            f"{INVOKERS} Invoke calls in flight",
            fan_time.moto_cpu_s,
        )
    )
    pass_requests = {s: n / passes for s, n in services_of(idle.calls).items()}
    pass_cpu = idle_time.cpu_s / passes
    pass_s = estimated_s(pass_cpu, pass_requests, latency)
    i.lambdas.append(
        LambdaLine(
            "idle tick",
            "tick_shard",
            mem["tick_shard"],
            float(passes),
            idle_time.wall_s / passes,
            pass_cpu,
            pass_requests,
            pass_s,
            passes * gb_seconds(pass_s, mem["tick_shard"]),
            "one pass per shard, nothing due",
            idle_time.moto_cpu_s / passes,
        )
    )
    i.extra_sqs = idle_poll_requests(sqs_event_sources(), 60.0)
    return i


def sqs_event_sources() -> int:
    """The app's SQS event sources (each has Lambda's pollers on its queue)."""
    from chalice.app import SQSEventConfig

    from app import app

    return sum(isinstance(source, SQSEventConfig) for source in app.event_sources)


def memory_of(unit: Unit, function: str) -> int:
    return next(line.memory_mb for line in unit.lambdas if line.function == function)


def wall_gb_s(unit: Unit) -> float:
    """GB-s per unit of work had each invocation lasted its wall time measured on moto."""
    return sum(
        line.invocations * gb_seconds(line.wall_s, line.memory_mb)
        if line.invocations
        else line.wall_s * line.memory_mb / 1024
        for line in unit.lambdas
    )


def executor_line(
    unit: str,
    memory: int,
    calls: Tally,
    timing: requests_per_run.Timing,
    jobs: int,
    latency: Mapping[str, float],
    wait_s: float,
) -> LambdaLine:
    """The executor's invocations of a unit of work: per invocation, then per job."""
    n = timing.invocations
    per_invocation = {s: c / n for s, c in services_of(calls.calls).items()}
    cpu = timing.cpu_s / n
    duration = estimated_s(cpu, per_invocation, latency, wait_s=wait_s)
    return LambdaLine(
        unit,
        "execute_jobs",
        memory,
        n / jobs,
        timing.wall_s / n,
        cpu,
        per_invocation,
        duration,
        n / jobs * gb_seconds(duration, memory),
        f"{jobs / n:g} jobs per invocation"
        + (f"; + {wait_s:g} s waiting for the fire second" if wait_s else ""),
        timing.moto_cpu_s / n,
    )


# ---------------------------------------------------------------- markdown
def money(value: float) -> str:
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def num(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def ops(counts: Mapping[str, float]) -> str:
    shown = [f"{op} {num(n)}" for op, n in sorted(counts.items()) if round(n, 6)]
    return f"{num(sum(counts.values()))} ({', '.join(shown)})" if shown else "0"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(report: Report) -> str:
    a = report.args
    cron, queue, idle = report.cron, report.queue, report.idle
    units = (cron, queue, idle)
    out: list[str] = []
    out.append(
        f"Measured with `.venv/bin/python -m bench.cost_table` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {report.run_s:.0f} s ({a.tasks} every-minute "
        f"tasks, {a.queue_jobs} queue jobs, batches of {a.batch_size}, {report.shards} shards "
        f"as `.chalice/config.json` deploys, stage `{a.stage}`; units for runs with a "
        f"{a.log_bytes} B log; {machine_facts()})."
    )
    out.append("")
    out.append(
        "What each uses (a cron run and a queue job: what it adds; an idle tick: the "
        f"minute's `tick` and its {report.shards} shard passes with nothing due):"
    )
    out.append("")
    out.append(
        markdown_table(
            ["", "per cron run", "per queue job", "per idle tick"],
            [
                ["DynamoDB requests", *(ops(u.dynamodb) for u in units)],
                [
                    "DynamoDB WRU (table + indexes)",
                    *(
                        f"{num(u.wru_table + u.wru_index)} "
                        f"({num(u.wru_table)} + {num(u.wru_index)})"
                        for u in units
                    ),
                ],
                ["DynamoDB RRU", *(num(u.rru) for u in units)],
                [
                    "SQS requests",
                    *(
                        ops(u.sqs)
                        + (f" + {num(u.extra_sqs)} idle polls (assumed)" if u.extra_sqs else "")
                        for u in units
                    ),
                ],
                [
                    "Lambda invocations",
                    *(
                        ", ".join(
                            f"`{line.function}` {num(line.invocations)}"
                            for line in u.lambdas
                            if line.invocations
                        )
                        or "0"
                        for u in units
                    ),
                ],
                ["API Gateway requests", *(num(u.api_requests) for u in units)],
            ],
        )
    )
    out.append("")
    out.append(
        "Lambda time, per invocation (ms). *wall* and *CPU* are measured against moto on "
        "this machine, in this process (*CPU* is ours: moto's, beside it, is left out), "
        "and say little about AWS. *estimated* is our CPU + "
        f"{a.dynamodb_ms:g} ms per DynamoDB request + "
        f"{a.sqs_ms:g} ms per SQS request + {a.lambda_ms:g} ms per Lambda Invoke (assumed "
        "in-region latencies, one request after another unless noted), and is what the "
        "dollars use:"
    )
    out.append("")
    rows = []
    for u in units:
        for line in u.lambdas:
            req = ", ".join(f"{s} {num(n)}" for s, n in sorted(line.requests.items()) if n)
            rows.append(
                [
                    u.name,
                    f"`{line.function}` ({line.memory_mb} MB)",
                    f"{line.wall_s * 1000:.1f}",
                    f"{line.cpu_s * 1000:.1f}",
                    f"{line.moto_cpu_s * 1000:.1f}",
                    req or "0",
                    f"{line.estimated_s * 1000:.1f}",
                    f"{line.gb_s:.4f}",
                    line.note,
                ]
            )
    out.append(
        markdown_table(
            [
                "",
                "function",
                "wall",
                "CPU",
                "moto's CPU",
                "AWS requests",
                "estimated",
                "GB-s per unit",
                "",
            ],
            rows,
        )
    )
    out.append("")
    per_cron = dollars(cron.usage(), PRICES, 1e6)
    per_queue = dollars(queue.usage(), PRICES, 1e6)
    per_month = dollars(idle.usage(), PRICES, TICKS_PER_MONTH)
    out.append(
        f"Dollars (us-east-1 list prices cited {PRICES_CITED}, no free tier; idle: "
        f"{TICKS_PER_MONTH:,} ticks a month):"
    )
    out.append("")
    rows = [
        [label, money(per_cron[label]), money(per_queue[label]), money(per_month[label])]
        for label, _, _ in LINES
    ]
    rows.append(
        [
            "**total**",
            f"**{money(sum(per_cron.values()))}**",
            f"**{money(sum(per_queue.values()))}**",
            f"**{money(sum(per_month.values()))}**",
        ]
    )
    at_wall = [
        dollars(Usage(lambda_gb_s=wall_gb_s(u)), PRICES, n)["Lambda duration (GB-s, estimated)"]
        for u, n in ((cron, 1e6), (queue, 1e6), (idle, TICKS_PER_MONTH))
    ]
    rows.append(
        [
            "(Lambda duration at the wall times measured on moto; not in the total)",
            *(f"({money(v)})" for v in at_wall),
        ]
    )
    rows.append(
        [
            "EventBridge Scheduler, to compare (invokes only)",
            money(PRICES.scheduler_per_million),
            "",
            "$0",
        ]
    )
    out.append(
        markdown_table(
            ["", "per million cron runs", "per million queue jobs", "idle, per month"], rows
        )
    )
    out.append("")
    biggest = max(per_cron, key=lambda label: per_cron[label])
    out.append(
        f"Biggest line per cron run: {biggest}, {money(per_cron[biggest])} of "
        f"{money(sum(per_cron.values()))} per million; "
        f"{num(cron.wru_index)} of its {num(cron.wru_table + cron.wru_index)} WRU are "
        "index writes. WRU by table and index:"
    )
    out.append("")
    cron_wru, queue_wru = report.wru_cron, report.wru_queue
    names = sorted(set(cron_wru) | set(queue_wru), key=lambda n: (-cron_wru.get(n, 0.0), n))
    out.append(
        markdown_table(
            ["WRU", "per cron run", "per queue job"],
            [[f"`{n}`", num(cron_wru.get(n, 0.0)), num(queue_wru.get(n, 0.0))] for n in names],
        )
    )
    out.append("")
    sources = sqs_event_sources()
    polls = idle_poll_requests(sources, 60.0)
    wait_per_million = dollars(
        Usage(lambda_gb_s=gb_seconds(EARLY_WAIT_S, memory_of(cron, "execute_jobs"))), PRICES, 1e6
    )["Lambda duration (GB-s, estimated)"]
    ddb_cron = per_cron["DynamoDB write request units"] + per_cron["DynamoDB read request units"]
    out.append("Notes:")
    out.append("")
    for note in [
        f"SQS bills each 64 KB of a request's payload as a request: the largest message "
        f"body was {report.largest_body} B, so a batch of ten ({10 * report.largest_body} B) "
        f"is billed as {sqs_requests(10 * report.largest_body)} request, as the table counts "
        "it.",
        f"The SQS lines include Lambda's pollers (billed to the account): per message, "
        f"the receive and delete measured by the benchmark's stand-in; and while the queues "
        f"are empty, in the idle column, {num(polls)} ReceiveMessage a minute (assumed: AWS does "
        f"not publish the idle rate; {IDLE_POLLERS} pollers doing {LONG_POLL_S} s long polls "
        f"on each of the app's {sources} SQS event sources).",
        "Not counted: cold starts (their init phase is billed duration too), CloudWatch Logs "
        "ingestion of the functions' lines and EMF records, DynamoDB storage of the kept "
        "runs (each ALL index holds another copy), data transfer.",
        f"The executor's wait for a cron firing's second ({EARLY_WAIT_S:g} s per invocation, "
        "its mean) is billed duration, shared by the jobs of an invocation; with one job per "
        "invocation (`--batch-size 1`: a queue that holds one message at a time) every cron "
        "run pays it whole: "
        f"{money(wait_per_million)} per million runs for the wait alone.",
        "DynamoDB's on-demand prices were halved on 2024-11-01; at the earlier $1.25 and "
        f"$0.25 the cron run's total would be {money(sum(per_cron.values()) + ddb_cron)} per "
        "million.",
        *report.notes,
    ]:
        out.append(f"- {note}")
    out.append("")
    out.append("Prices: " + "; ".join(f"{name}: <{url}>" for name, url in PRICE_PAGES) + ".")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="every-minute tasks (20)")
    parser.add_argument("--queue-jobs", type=int, default=10, help="queue jobs (10)")
    parser.add_argument(
        "--batch-size", type=int, default=10, help="messages per executor invocation (10)"
    )
    parser.add_argument("--log-bytes", type=int, default=1024, help="log bytes per run (1024)")
    parser.add_argument(
        "--stage", default="prod", help="stage of .chalice/config.json to read (prod)"
    )
    parser.add_argument("--shards", type=int, help="due shards (default: the stage's)")
    parser.add_argument("--dynamodb-ms", type=float, default=5.0, help="per DynamoDB request (5)")
    parser.add_argument("--sqs-ms", type=float, default=10.0, help="per SQS request (10)")
    parser.add_argument("--lambda-ms", type=float, default=20.0, help="per Lambda Invoke (20)")
    args = parser.parse_args(argv)
    if args.queue_jobs < 1:
        parser.error("--queue-jobs must be at least 1")

    started = time.perf_counter()
    report = build(args, chalice_config())
    report.run_s = time.perf_counter() - started
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
