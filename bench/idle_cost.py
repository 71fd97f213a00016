"""Idle cost: 100,000 tasks, none due within the hour: AWS requests (or Redis
commands) and CPU-seconds per hour of Tickwork's tick, ARQ's cron loop and
Celery beat, side by side in one run.

    .venv/bin/python -m bench.idle_cost                        # 100k tasks, 5 ticks, 60 s, 2 cycles
    .venv/bin/python -m bench.idle_cost --ticks 60             # the whole hour of ticks
    .venv/bin/python -m bench.idle_cost --tasks 2000 --only tickwork --ticks 3

The schedules: `--tasks` daily cron schedules `M H * * *` (UTC), the same pairs
of minute and hour for every system, each hour 2 to 23 hours after the hour in
which the measurement starts (`idle_crons`), so none fires within an hour of
it. Celery is in the `bench` extra (`make bench-deps`); ARQ needs
`redis-server` (`apt-get install -y redis-server`). A system whose part cannot
run is skipped with the reason printed.

* **Tickwork.** A fresh moto in its own process (its CPU is not counted: it is
  the emulated AWS, and it answers a Query by walking the whole table), the
  stage provisioned, the settings of the deployed stage (`.chalice/config.json`:
  `TICKWORK_DUE_SHARDS`), a ManualClock at 09:00:00 UTC. The tasks are created
  with `TaskService.create`, in bulk as `bench.tick_cost` makes them
  (`bench._common.create_tasks_in_bulk`). `tick_shard` is a docker-free
  function on moto, so the fan-out's asynchronous Invoke calls are real calls
  that run nothing; the script hands each event the tick sent (read from the
  Invoke request) to the `tick_shard` handler itself, one after another, as
  Lambda would start them, with a context counting down from the function's
  timeout. Per minute, as deployed: EventBridge calls `tick`
  (`handlers.on_tick`: `Tick.fan_out`, one Invoke per shard), and each shard's
  `tick_shard` (`handlers.on_tick_shard`: `Tick.run_shards([shard])`) makes one
  pass: a Query of the tasks' `due` index up to now + the lookahead (75 s),
  one of the jobs' `due` index, one of the approvals' `due` index. There are no
  sub-ticks within the minute on AWS (the lookahead and each message's
  DelaySeconds place firings on their second). One warm-up tick at 08:59 (not
  counted: the clients' first calls), then `--ticks` ticks at 09:00, 09:01, ...
  Every AWS request is counted by operation (`CallCounter`); CPU is this
  process's `time.process_time()` around the handler calls only. With fewer
  than 60 ticks the hour's figures are the measured ticks x 60 / N, and the
  table says so.
* **ARQ.** `redis-server` on a free port (as `bench.queue_throughput` starts
  it), one ARQ worker (`bench.idle_crons arq`) with one `arq.cron` job per
  schedule. ARQ walks every cron job on each poll (`poll_delay` 0.5 s). After
  its first poll (which computes every job's next run: its start-up, not
  counted), `--arq-seconds` of wall time: the worker process's CPU, and
  Redis's `INFO commandstats` before and after (less the INFO calls
  themselves), scaled to 3600 s.
* **Celery beat.** `bench.idle_crons celery`: beat with one `crontab` entry per
  schedule, its default PersistentScheduler, the `memory://` broker. Beat keeps
  a heap of the entries' next run times; each tick pops nothing that is not
  due and sleeps until the heap's first entry or `beat_max_loop_interval`
  (300 s), whichever is sooner; before each tick it compares the whole
  schedule with its last copy (`schedules_equal`, to see whether it changed),
  and after a sleep it syncs the shelve if 3 min have passed, which with
  `writeback=True` pickles every entry again. So its work comes in cycles of a
  300 s sleep, a sync and a tick, and the window is whole cycles: from the end
  of its first tick (start-up before it, the shelve written and the heap built,
  not counted) to the end of the tick `--celery-cycles` (2) cycles later; the
  beat process's CPU over it, scaled to 3600 s. Beat sends nothing when nothing
  is due, so the broker sees no traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench._common import (
    ROOT,
    CallCounter,
    MotoProcess,
    RedisServer,
    Stopwatch,
    Tally,
    attach_to_new_clients,
    create_tasks_in_bulk,
    fake_aws_credentials,
    machine_facts,
    process_cpu_seconds,
    quiet_logs,
    redis_server_or_none,
    redis_version,
    table,
)

HOUR_S = 3600.0
MINUTE_S = 60.0
#: The simulated hour of Tickwork's ticks (the tasks are created at its start).
HOUR_START = datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC)
#: A schedule's hour is this many hours after the hour the measurement starts in
#: (at least 2, so its first firing is more than an hour away from any instant of
#: that hour; at most 23: a day).
HOURS_AHEAD = range(2, 24)
STAGE = "idle"
#: The stage whose settings the Tickwork part uses (its TICKWORK_DUE_SHARDS).
DEPLOYED_STAGE = "prod"
CELERY_MISSING = (
    "Celery: not installed; skipping Celery beat. `make bench-deps` installs the "
    "`bench` extra (celery) into the venv."
)


# ---------------------------------------------------------------- pure parts
def idle_crons(count: int, now: datetime, rng: random.Random) -> list[tuple[int, int]]:
    """`count` (minute, hour) pairs of daily schedules, none of which fires within
    an hour of any instant of `now`'s hour (in `now`'s zone): each hour is 2 to
    23 hours after it."""
    return [(rng.randrange(60), (now.hour + rng.choice(HOURS_AHEAD)) % 24) for _ in range(count)]


def cron_text(minute: int, hour: int) -> str:
    """Tickwork's 5-field cron for the pair: daily at hour:minute."""
    return f"{minute} {hour} * * *"


def per_hour(amount: float, measured_s: float) -> float:
    """`amount` seen over `measured_s` seconds, as a rate per hour."""
    return amount * HOUR_S / measured_s


@dataclass(frozen=True)
class HourScale:
    """How a measured span becomes an hour: by ticks (one a minute) or by seconds."""

    measured: float
    unit: str  # "ticks" or "s"

    @property
    def span_s(self) -> float:
        return self.measured * MINUTE_S if self.unit == "ticks" else self.measured

    @property
    def factor(self) -> float:
        return HOUR_S / self.span_s

    def describe(self) -> str:
        if self.unit == "ticks":
            n = round(self.measured)
            if n == 60:
                return "60 ticks (the hour, run)"
            return f"{n} ticks x 60/{n}"
        return f"{self.measured:.1f} s x 3600/{self.measured:.1f}"


@dataclass
class Outcome:
    """One system's hour."""

    system: str
    does: str
    scale: HourScale
    #: Requests (AWS) or commands (Redis) by name, over the measured span.
    requests: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def requests_per_hour(self) -> float:
        return sum(self.requests.values()) * self.scale.factor

    def cpu_per_hour(self) -> float:
        return self.cpu_s * self.scale.factor

    def by_name_per_hour(self) -> str:
        return ", ".join(
            f"{name} {n * self.scale.factor:,.0f}" for name, n in self.requests.most_common()
        )


# ---------------------------------------------------------------- Tickwork
def deployed_environment() -> dict[str, str]:
    """The environment Chalice gives the deployed stage's functions."""
    from infra.iam import stage_environment
    from infra.local_stack import CHALICE_CONFIG

    return stage_environment(json.loads(CHALICE_CONFIG.read_text()), DEPLOYED_STAGE)


class ShardEvents:
    """The payloads of the `tick_shard` invocations the tick makes, read from each
    Invoke request as botocore sends it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Any] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.lambda.Invoke", self._note)

    def _note(self, params: dict[str, Any], **kwargs: Any) -> None:
        with self._lock:
            self._events.append(json.loads(params["Payload"]))

    def take(self) -> list[Any]:
        with self._lock:
            events, self._events = self._events, []
        return events


@dataclass
class TickMinute:
    """One simulated minute: the tick and its shard passes."""

    at: datetime
    tally: Tally
    cpu_s: float
    wall_s: float
    passes: int
    tasks_read: int


def scheduled_event(at: datetime) -> dict[str, Any]:
    """What EventBridge hands the `tick` function (the tick takes no time from it)."""
    return {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
        "detail": {},
    }


def run_minute(at: datetime, counter: CallCounter, events: ShardEvents) -> TickMinute:
    """`tick` at `at`, then each `tick_shard` invocation it asked for, in turn."""
    from chalice.local import LambdaContext

    from chalicelib.engine import handlers
    from infra.local_stack import function_timeout_s

    timeout_ms = function_timeout_s("tick_shard") * 1000
    cpu_s = 0.0
    tasks_read = 0
    with counter.measuring() as tally, Stopwatch() as wall:
        events.take()
        with Stopwatch() as tick:
            handlers.on_tick(scheduled_event(at))
        cpu_s += tick.cpu_s
        shard_events = events.take()
        for event in shard_events:
            context = LambdaContext("tick_shard", 1769, max_runtime_ms=timeout_ms)
            with Stopwatch() as shard:
                answer = handlers.on_tick_shard(event, context)
            cpu_s += shard.cpu_s
            tasks_read += int(answer.get("tasks", 0)) + int(answer.get("messages", 0))
    return TickMinute(at, tally, cpu_s, wall.wall_s, len(shard_events), tasks_read)


def run_tickwork(
    tasks: int, ticks: int, seed: int, read_timeout_s: float, counter: CallCounter
) -> Outcome:
    from chalicelib import wiring
    from chalicelib.clock import ManualClock
    from chalicelib.engine.fanout import tick_shard_function
    from chalicelib.settings import Settings
    from chalicelib.storage.binding import bind_tables
    from chalicelib.wiring import Services
    from infra.local import provision
    from tests.functional.moto_lambda import docker_free_function

    rng = random.Random(seed)
    events = ShardEvents()
    uninstall = attach_to_new_clients(events.attach)
    try:
        with MotoProcess() as moto:
            provision(moto.endpoint_url, STAGE)
            environment = {
                **deployed_environment(),
                "TICKWORK_STAGE": STAGE,
                "TICKWORK_AWS_ENDPOINT": moto.endpoint_url,
            }
            settings = Settings.from_env(environment)
            clock = ManualClock(HOUR_START)
            services = Services.build(
                settings, clock=clock, tables=bind_tables(settings, read_timeout_s=read_timeout_s)
            )
            print(
                f"Tickwork: {settings.due_shards} shards (TICKWORK_DUE_SHARDS of the "
                f"{DEPLOYED_STAGE} stage), lookahead {settings.lookahead_s:g} s; "
                f"writing {tasks} tasks ...",
                flush=True,
            )
            schedules = iter(idle_crons(tasks, HOUR_START, rng))
            with Stopwatch() as writing:
                create_tasks_in_bulk(
                    services,
                    moto.endpoint_url,
                    tasks,
                    lambda: cron_text(*next(schedules)),
                    progress=lambda n: print(f"  {n} tasks written", flush=True),
                )
            print(f"  written in {writing.wall_s:.0f} s", flush=True)
            docker_free_function(moto.endpoint_url, tick_shard_function(settings.stage))
            wiring.use(services)
            try:
                clock.set(HOUR_START - timedelta(minutes=1))
                warm = run_minute(clock.now(), counter, events)
                print(
                    f"  warm-up tick at {warm.at:%H:%M}: {warm.tally.total()} calls, "
                    f"{warm.passes} passes, {warm.wall_s:.1f} s wall (not counted)",
                    flush=True,
                )
                minutes: list[TickMinute] = []
                moto_before = moto.cpu_seconds()
                for k in range(ticks):
                    clock.set(HOUR_START + timedelta(minutes=k))
                    minute = run_minute(clock.now(), counter, events)
                    minutes.append(minute)
                    print(
                        f"  tick {k + 1}/{ticks} at {minute.at:%H:%M}: {minute.passes} passes, "
                        f"{minute.tally.total()} calls, {minute.tally.read()} items read, "
                        f"{minute.cpu_s * 1000:.0f} ms CPU, {minute.wall_s:.1f} s wall",
                        flush=True,
                    )
                moto_cpu_s = moto.cpu_seconds() - moto_before
            finally:
                wiring.use(None)
    finally:
        uninstall()

    total = Tally()
    for minute in minutes:
        total = total + minute.tally
    outcome = Outcome(
        "Tickwork",
        f"60 tick + {60 * settings.due_shards:,} tick_shard invocations",
        HourScale(ticks, "ticks"),
        Counter({op: n for (_, op), n in total.calls.items()}),
        sum(m.cpu_s for m in minutes),
    )
    fired = sum(m.tasks_read for m in minutes)
    read = total.read()
    outcome.notes += [
        f"this process's CPU over the handler calls; moto's own CPU "
        f"({moto_cpu_s:.0f} s over the {ticks} ticks, {moto_cpu_s / ticks:.1f} s a tick: "
        "it walks the whole table per Query) is not counted",
        f"per tick: {total.total() / ticks:.0f} calls "
        f"({', '.join(f'{op} {n / ticks:g}' for (_, op), n in sorted(total.calls.items()))}), "
        f"{read} items read, {fired} tasks fired or messages sent in all",
        f"wall {sum(m.wall_s for m in minutes) / ticks:.1f} s a tick (moto's, not AWS's)",
    ]
    if fired or read:
        outcome.notes.append("WARNING: something was due; the schedules are not idle")
    return outcome


# ---------------------------------------------------------------- the other two
class Child:
    """`python -m bench.idle_crons ...` with its stdout lines noted as they come."""

    def __init__(self, arguments: Sequence[str]) -> None:
        self.system = arguments[0]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.idle_crons", *arguments],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.strip()))
                self._changed.notify_all()

    def wait_for(self, prefix: str, timeout_s: float, *, nth: int = 1, after: float = 0) -> float:
        """The monotonic time of the `nth` line starting with `prefix` since `after`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                seen = [at for at, line in self.lines if at > after and line.startswith(prefix)]
                if len(seen) >= nth:
                    return seen[nth - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise RuntimeError(f"no {prefix!r} line from bench.idle_crons {self.system}")
                self._changed.wait(min(left, 1.0))

    def lines_between(self, start: float, end: float, prefix: str) -> int:
        with self._changed:
            return sum(
                1 for at, line in self.lines if start < at <= end and line.startswith(prefix)
            )

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()  # the child sends itself SIGINT
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def write_schedules(directory: Path, pairs: list[tuple[int, int]]) -> Path:
    path = directory / "schedules.json"
    path.write_text(json.dumps(pairs))
    return path


def commandstats(client: Any) -> Counter[str]:
    """Redis's calls per command so far."""
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def run_arq(
    tasks: int, seconds: float, seed: int, sleep: Callable[[float], None]
) -> Outcome | None:
    executable = redis_server_or_none("ARQ")
    if executable is None:
        return None
    import redis

    redis_server = RedisServer(executable)
    child: Child | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="idle-arq-") as tmp:
            pairs = idle_crons(tasks, datetime.now(UTC), random.Random(seed))
            path = write_schedules(Path(tmp), pairs)
            child = Child(["arq", "--port", str(redis_server.port), "--schedules", str(path)])
            print(
                f"ARQ {version('arq')}: redis-server {redis_version(executable)} on "
                f"127.0.0.1:{redis_server.port}, worker pid {child.process.pid}, "
                f"{tasks} cron jobs; waiting for its first poll ...",
                flush=True,
            )
            client = redis.Redis(host="127.0.0.1", port=redis_server.port)
            started = time.monotonic()
            ready = child.wait_for("ready", timeout_s=600)
            print(f"  first poll done after {ready - started:.0f} s; measuring", flush=True)
            before = commandstats(client)
            cpu_before = child.cpu_seconds()
            redis_before = process_cpu_seconds(redis_server.process.pid)
            with Stopwatch() as window:
                sleep(seconds)
            cpu = child.cpu_seconds() - cpu_before
            redis_cpu = process_cpu_seconds(redis_server.process.pid) - redis_before
            commands = commandstats(client) - before
            commands.pop("info", None)  # ours
            client.close()
            child.stop()
    finally:
        if child is not None:
            child.stop()
        redis_server.stop()
    scale = HourScale(window.wall_s, "s")
    polls = commands.get("zrangebyscore", 0)
    outcome = Outcome(
        "ARQ cron loop",
        f"{polls * scale.factor:,.0f} polls, each walking {tasks:,} cron jobs",
        scale,
        commands,
        cpu,
    )
    outcome.notes += [
        f"the worker process's CPU; redis-server's ({redis_cpu:.2f} s measured, "
        f"{redis_cpu * scale.factor:.1f} s/h) is apart",
        f"start-up (computing {tasks:,} next runs) took {ready - started:.0f} s, not counted",
    ]
    return outcome


def run_celery(tasks: int, cycles: int, seed: int) -> Outcome | None:
    try:
        celery_version = version("celery")
    except PackageNotFoundError:
        print(CELERY_MISSING)
        return None
    child: Child | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="idle-celery-") as tmp:
            pairs = idle_crons(tasks, datetime.now(UTC), random.Random(seed))
            path = write_schedules(Path(tmp), pairs)
            db = Path(tmp) / "celerybeat-schedule"
            child = Child(["celery", "--schedules", str(path), "--db", str(db)])
            print(
                f"Celery {celery_version}: beat pid {child.process.pid}, {tasks} crontab "
                "entries, PersistentScheduler, memory:// broker; waiting for its first tick ...",
                flush=True,
            )
            started = time.monotonic()
            ready = child.wait_for("tick", timeout_s=900)
            print(f"  first tick done after {ready - started:.0f} s; measuring", flush=True)
            cpu_before = child.cpu_seconds()
            end = child.wait_for("tick", timeout_s=cycles * 900, nth=cycles, after=ready)
            cpu = child.cpu_seconds() - cpu_before
            ticks = child.lines_between(ready, end, "tick")
            syncs = child.lines_between(ready, end, "sync")
            db_bytes = sum(p.stat().st_size for p in Path(tmp).glob("celerybeat-schedule*"))
            child.stop()  # before its shelve's directory goes
    finally:
        if child is not None:
            child.stop()
    scale = HourScale(end - ready, "s")
    outcome = Outcome(
        "Celery beat",
        f"{ticks * scale.factor:.1f} ticks and {syncs * scale.factor:.1f} syncs "
        f"of {tasks:,} entries",
        scale,
        Counter(),
        cpu,
    )
    outcome.notes += [
        f"the beat process's CPU over {cycles} whole cycles (sleep, sync, tick): "
        f"{ticks} ticks, {syncs} syncs of the shelve ({db_bytes / 1e6:.1f} MB), "
        f"{cpu / cycles:.2f} s of CPU a cycle; no message sent (nothing due)",
        f"start-up (the shelve written, the heap built) took {ready - started:.0f} s, not counted",
    ]
    return outcome


# ---------------------------------------------------------------- main
def report(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        if o.system == "Celery beat":
            requests = "0 broker messages"
        elif o.system == "Tickwork":
            requests = f"{o.requests_per_hour():,.0f} AWS requests ({o.by_name_per_hour()})"
        else:
            requests = f"{o.requests_per_hour():,.0f} Redis commands ({o.by_name_per_hour()})"
        rows.append([o.system, o.does, requests, o.cpu_per_hour(), o.scale.describe()])
    return table(
        ["system", "per hour it runs", "requests per hour", "CPU-s per hour", "measured"], rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="schedules (100000)")
    parser.add_argument(
        "--ticks",
        type=int,
        default=5,
        help="Tickwork's minutes run (5; 60 runs the whole hour, 2-4 min of moto per tick "
        "at 100k tasks)",
    )
    parser.add_argument(
        "--arq-seconds", type=float, default=60, help="ARQ's measured wall time (60)"
    )
    parser.add_argument(
        "--celery-cycles",
        type=int,
        default=2,
        help="Celery beat's measured cycles of a 300 s sleep, a sync and a tick (2)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=("tickwork", "arq", "celery"),
        help="run only this system (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=600,
        help="pynamodb read timeout, s (600: moto's Queries over 100k items are slow)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.ticks <= 60:
        parser.error("--ticks must be 1 to 60 (the minutes of an hour)")
    only = set(args.only or ("tickwork", "arq", "celery"))

    start, start_load = time.time(), _load()
    print(f"# idle_cost ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine_facts()})", flush=True)
    fake_aws_credentials()
    quiet_logs()
    counter = CallCounter()
    counter.install()
    outcomes: list[Outcome | None] = []
    if "tickwork" in only:
        outcomes.append(run_tickwork(args.tasks, args.ticks, args.seed, args.read_timeout, counter))
    if "arq" in only:
        outcomes.append(run_arq(args.tasks, args.arq_seconds, args.seed, time.sleep))
    if "celery" in only:
        outcomes.append(run_celery(args.tasks, args.celery_cycles, args.seed))
    done = [o for o in outcomes if o is not None]

    print()
    print(f"{args.tasks:,} tasks, none due within the hour: requests and CPU-seconds per hour")
    print(report(done))
    for o in done:
        for note in o.notes:
            print(f"  {o.system}: {note}")
    print(
        f"Load average at the start {start_load}, at the end {_load()}; "
        f"the run took {time.time() - start:.0f} s"
    )
    return 0


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
