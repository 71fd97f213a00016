"""End-to-end queue throughput: Tickwork's local stack against ARQ on a local Redis.

    .venv/bin/python -m bench.queue_throughput --jobs 200
    .venv/bin/python -m bench.queue_throughput --jobs 1000 --clients 4 --workers 4
    .venv/bin/python -m bench.queue_throughput --jobs 200 --only arq

Tickwork: starts `python -m infra.local_stack` as `bench.lateness` does (a free
port, a temporary state dir, an admin token; `--workers` executor workers,
default 4), submits `--jobs` `echo` jobs with `POST /v1/queue/jobs` from
`--clients` client threads, waits until none is scheduled, queued or active
(`GET /v1/queue/depth` every `--poll-seconds`; `--wait result` long-polls
`GET /v1/queue/jobs/{id}/result?wait=20` per job instead), then reads every job
(`GET /v1/queue/jobs/{id}`).

ARQ: starts `redis-server` on a free loopback port (no persistence), one ARQ
worker process (`bench.arq_worker`, an `echo` function that returns its args)
with `max_jobs` = 10 x `--workers` unless `--arq-max-jobs` says otherwise (each
of the stack's executor workers receives SQS batches of up to 10 messages, so
it holds up to 10 x workers jobs at once; ARQ's `poll_delay` stays 0.5 s unless
`--arq-poll-delay`),
enqueues the same jobs with `enqueue_job` from `--clients` concurrent asyncio
tasks, waits until every job has a result (one `EXISTS` over all result keys
every `--poll-seconds`), then reads every result (`Job.result_info()`).

For both: submit rate = accepted jobs / (first submit .. last answer); "all
ended" = first submit .. the latest finish time the system recorded (Tickwork's
`finished_at`, ARQ's `finish_time`), so the polling period does not count;
throughput = ended jobs / that; latency of a job = its recorded finish time -
the client's clock just before its submit call (one machine, one clock). "not
complete" = jobs that did not end `complete` (ARQ: without a successful
result). Server CPU = user + system CPU of the serving processes over submit and
wait (Tickwork: the local stack's process group, the embedded AWS included;
ARQ: redis-server + the worker).

moto's floor, in the same run (`bench.moto_floor`): the AWS calls one such job
makes (recorded through the Chalice app on moto in this process: submit,
receive, the executor's batch, delete, a read), replayed for `--jobs` fresh job
ids by `--floor-threads` plain boto3 threads against a moto server in its own
process. Tickwork / floor is the share of moto's own speed the stack reaches.

What differs, so read the ratio to ARQ as what it is: Tickwork's path is HTTP
(Chalice's LocalDevServer) -> DynamoDB -> SQS -> executor threads -> DynamoDB,
with DynamoDB and SQS emulated by moto in a process of its own (the embedded
AWS, which puts every DynamoDB write on disk before answering it), the API, the
tick and the workers in the stack's process, on a 2-core machine; a log line
per run. moto's costs dominate: it answers a Query by walking the whole table,
and each SQS send recounts every message in the queue (GROUND.md: batched
sends fall from ~136/s on an empty queue to ~24/s at 600 waiting), so a
backlog would slow every further submit. ARQ's path is a Redis client ->
Redis (C, its own process) -> one asyncio worker process, with no HTTP, no
auth and no durable record beyond Redis's memory. Neither figure says what
Tickwork does on AWS, where the API, DynamoDB, SQS and Lambda scale apart.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ROOT,
    RedisServer,
    fake_aws_credentials,
    machine_facts,
    percentile,
    process_cpu_seconds,
    process_group_cpu_seconds,
    quiet_logs,
    redis_server_or_none,
    redis_version,
    table,
)
from bench.lateness import Stack, parse_time
from bench.moto_floor import Floor, floor, record_one_job
from infra.stack_process import free_port

JOBS = "/v1/queue/jobs"
DEPTH = "/v1/queue/depth"
TERMINAL = frozenset({"complete", "failed", "cancelled", "rejected", "skipped", "expired"})
WAITING = ("scheduled", "queued", "active", "awaiting_approval")
NOT_ENDED = "not ended"
#: Seconds between progress lines while waiting.
PROGRESS_S = 10.0


@dataclass
class Outcome:
    """What one system did with the jobs."""

    system: str
    jobs: int
    accepted: int = 0
    submit_s: float = 0.0
    #: First submit .. latest recorded finish; None when not every job ended in time.
    ended_s: float | None = None
    #: First submit .. the poll that saw every job ended.
    seen_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    submit_errors: Counter[str] = field(default_factory=Counter)
    server_cpu_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def submit_rate(self) -> float:
        return self.accepted / self.submit_s if self.submit_s else float("nan")

    @property
    def ended(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != NOT_ENDED)

    @property
    def throughput(self) -> float:
        return self.ended / self.ended_s if self.ended_s else float("nan")

    @property
    def not_complete(self) -> int:
        return self.jobs - self.statuses["complete"]


class _Waiter:
    """A deadline and a progress line every PROGRESS_S."""

    def __init__(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s
        self._next_line = time.monotonic() + PROGRESS_S

    @property
    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def progress(self, text: str) -> None:
        if time.monotonic() >= self._next_line:
            self._next_line += PROGRESS_S
            print(f"  waiting: {text}", flush=True)


# ---------------------------------------------------------------- Tickwork
class ThroughputStack(Stack):
    """bench.lateness's stack, keeping all of its output and telling its pid."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output = deque(maxlen=None)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid


def run_tickwork(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("tickwork", args.jobs)
    with tempfile.TemporaryDirectory(prefix="tickwork-bench-") as state_dir:
        secret = "tw_bench-" + secrets.token_urlsafe(24)
        stack = ThroughputStack(
            free_port(),
            state_dir,
            secret,
            args.tick_seconds,
            workers=args.workers,
        )
        ready_s = stack.start()
        print(f"Tickwork: local stack ready in {ready_s:.1f} s on {stack.url}", flush=True)
        try:
            with stack.client() as client:
                cpu_before = process_group_cpu_seconds(stack.pid)
                submitted = submit_tickwork(stack, args, outcome)
                first = min((at for _, at in submitted.values()), default=time.time())
                if args.wait == "depth":
                    wait_by_depth(client, args)
                else:
                    wait_by_result(stack, args, list(submitted))
                outcome.seen_s = time.time() - first
                outcome.server_cpu_s = process_group_cpu_seconds(stack.pid) - cpu_before
                read_tickwork_jobs(stack, args, submitted, first, outcome)
        finally:
            code = stack.stop()
            if args.log:
                Path(args.log).write_text("".join(stack.output))
    if code:
        outcome.notes.append(f"the local stack exited with {code} after SIGINT")
    return outcome


def submit_tickwork(
    stack: Stack, args: argparse.Namespace, outcome: Outcome
) -> dict[str, tuple[int, float]]:
    """POST every job from `--clients` threads; returns job id -> (i, client's time
    just before its call)."""
    submitted: dict[str, tuple[int, float]] = {}
    lock = threading.Lock()

    def client_thread(k: int) -> None:
        with stack.client() as client:
            for i in range(k, args.jobs, args.clients):
                at = time.time()
                try:
                    response = client.post(JOBS, json={"action": "echo", "args": {"i": i}})
                except httpx.HTTPError as exc:
                    with lock:
                        outcome.submit_errors[type(exc).__name__] += 1
                    continue
                with lock:
                    if response.status_code == 202:
                        submitted[response.json()["id"]] = (i, at)
                    else:
                        outcome.submit_errors[f"HTTP {response.status_code}"] += 1
                        if len(outcome.notes) < 3:
                            outcome.notes.append(f"a submit answered {response.text[:200]}")

    started = time.time()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client_thread, range(args.clients)))
    done = time.time()
    first = min((at for _, at in submitted.values()), default=started)
    outcome.accepted = len(submitted)
    outcome.submit_s = done - first
    print(
        f"Tickwork: {outcome.accepted} jobs accepted in {outcome.submit_s:.1f} s "
        f"({outcome.submit_rate:.0f}/s); waiting for them ...",
        flush=True,
    )
    return submitted


def wait_by_depth(client: httpx.Client, args: argparse.Namespace) -> None:
    """Until the project has nothing scheduled, queued, active or awaiting approval
    (a fresh state dir: every job in it is ours, and each was written before its 202)."""
    waiter = _Waiter(args.timeout)
    while True:
        response = client.get(DEPTH)
        response.raise_for_status()
        depth = response.json()
        if not any(depth[name] for name in WAITING) or waiter.expired:
            return
        waiter.progress(", ".join(f"{name} {depth[name]}" for name in WAITING))
        time.sleep(args.poll_seconds)


def wait_by_result(stack: Stack, args: argparse.Namespace, ids: list[str]) -> None:
    """Long-poll each job's result (up to 20 s a call) from `--clients` threads."""
    waiter = _Waiter(args.timeout)
    done = Counter[str]()
    lock = threading.Lock()

    def client_thread(k: int) -> None:
        with stack.client() as client:
            for job_id in ids[k :: args.clients]:
                while not waiter.expired:
                    response = client.get(f"{JOBS}/{job_id}/result", params={"wait": 20})
                    response.raise_for_status()
                    if response.json()["status"] in TERMINAL:
                        break
                with lock:
                    done["ended"] += 1
                    waiter.progress(f"{done['ended']} of {len(ids)} ended")

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client_thread, range(args.clients)))


def read_tickwork_jobs(
    stack: Stack,
    args: argparse.Namespace,
    submitted: dict[str, tuple[int, float]],
    first: float,
    outcome: Outcome,
) -> None:
    ids = list(submitted)
    jobs: dict[str, dict[str, Any]] = {}

    def client_thread(k: int) -> None:
        with stack.client() as client:
            for job_id in ids[k :: args.clients]:
                response = client.get(f"{JOBS}/{job_id}")
                response.raise_for_status()
                jobs[job_id] = response.json()

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client_thread, range(args.clients)))
    finishes: list[float] = []
    for job_id, job in jobs.items():
        status = job["status"] if job["status"] in TERMINAL else NOT_ENDED
        outcome.statuses[status] += 1
        if status != NOT_ENDED and job.get("finished_at"):
            finished = parse_time(job["finished_at"]).timestamp()
            finishes.append(finished)
            outcome.latencies_ms.append((finished - submitted[job_id][1]) * 1000)
    outcome.statuses[NOT_ENDED] += args.jobs - len(jobs)  # never accepted
    if finishes and not outcome.statuses[NOT_ENDED]:
        outcome.ended_s = max(finishes) - first


# ---------------------------------------------------------------- ARQ
class ArqWorker:
    """`python -m bench.arq_worker` as a child process."""

    def __init__(self, port: int, max_jobs: int, poll_delay: float) -> None:
        command = [sys.executable, "-m", "bench.arq_worker", "--port", str(port)]
        self.process = subprocess.Popen(
            [*command, "--max-jobs", str(max_jobs), "--poll-delay", str(poll_delay)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            if self.process.stdin is not None:
                self.process.stdin.close()


def run_arq(args: argparse.Namespace) -> Outcome | None:
    executable = redis_server_or_none("ARQ")
    if executable is None:
        return None
    outcome = Outcome("arq", args.jobs)
    redis = RedisServer(executable)
    worker: ArqWorker | None = None
    try:
        worker = ArqWorker(redis.port, args.arq_max_jobs, args.arq_poll_delay)
        pids = (redis.process.pid, worker.process.pid)
        print(
            f"ARQ {version('arq')}: redis-server {redis_version(executable)} on "
            f"127.0.0.1:{redis.port}, worker pid {worker.process.pid}, "
            f"max_jobs={args.arq_max_jobs}, poll_delay={args.arq_poll_delay:g} s",
            flush=True,
        )

        def server_cpu() -> float:
            return sum(process_cpu_seconds(pid) for pid in pids)

        asyncio.run(measure_arq(redis.port, args, server_cpu, outcome))
    finally:
        if worker is not None:
            code = worker.stop()
            if code:
                outcome.notes.append(f"the ARQ worker exited with {code} after SIGINT")
        redis.stop()
    return outcome


async def measure_arq(
    port: int, args: argparse.Namespace, cpu: Callable[[], float], outcome: Outcome
) -> None:
    from arq.connections import RedisSettings, create_pool
    from arq.constants import default_queue_name, health_check_key_suffix, result_key_prefix
    from arq.jobs import Job

    pool = await create_pool(
        RedisSettings(host="127.0.0.1", port=port, conn_timeout=5, conn_retries=20)
    )
    try:
        # The worker writes its health-check key after its first poll: then it serves.
        waiter = _Waiter(30)
        while not await pool.exists(default_queue_name + health_check_key_suffix):
            if waiter.expired:
                raise RuntimeError("the ARQ worker did not start within 30 s")
            await asyncio.sleep(0.05)

        cpu_before = cpu()
        submitted: dict[str, tuple[Job, float]] = {}

        async def enqueuer(k: int) -> None:
            for i in range(k, args.jobs, args.clients):
                at = time.time()
                job = await pool.enqueue_job("echo", {"i": i})
                if job is None:  # only when the job id exists already
                    outcome.submit_errors["duplicate job id"] += 1
                else:
                    submitted[job.job_id] = (job, at)

        await asyncio.gather(*(enqueuer(k) for k in range(args.clients)))
        first = min((at for _, at in submitted.values()), default=time.time())
        outcome.accepted = len(submitted)
        outcome.submit_s = time.time() - first
        print(
            f"ARQ: {outcome.accepted} jobs enqueued in {outcome.submit_s:.1f} s "
            f"({outcome.submit_rate:.0f}/s); waiting for them ...",
            flush=True,
        )

        keys = [result_key_prefix + job_id for job_id in submitted]
        waiter = _Waiter(args.timeout)
        while True:
            ended = int(await pool.exists(*keys)) if keys else 0
            if ended == len(keys) or waiter.expired:
                break
            waiter.progress(f"{ended} of {len(keys)} have a result")
            await asyncio.sleep(args.poll_seconds)
        outcome.seen_s = time.time() - first
        outcome.server_cpu_s = cpu() - cpu_before

        infos = await asyncio.gather(*(job.result_info() for job, _ in submitted.values()))
        finishes: list[float] = []
        for (_, at), info in zip(submitted.values(), infos, strict=True):
            if info is None:
                outcome.statuses[NOT_ENDED] += 1
                continue
            outcome.statuses["complete" if info.success else "failed"] += 1
            finished = info.finish_time.timestamp()
            finishes.append(finished)
            outcome.latencies_ms.append((finished - at) * 1000)
        outcome.statuses[NOT_ENDED] += args.jobs - len(submitted)
        if finishes and not outcome.statuses[NOT_ENDED]:
            outcome.ended_s = max(finishes) - first
    finally:
        await pool.aclose()


# ---------------------------------------------------------------- report
def report(outcomes: list[Outcome], moto_floor: Floor | None, args: argparse.Namespace) -> None:
    def row(o: Outcome) -> list[object]:
        return [
            o.system,
            o.jobs,
            o.accepted,
            round(o.submit_s, 2),
            round(o.submit_rate, 1),
            "-" if o.ended_s is None else round(o.ended_s, 2),
            round(o.throughput, 1),
            round(percentile(o.latencies_ms, 50)) if o.latencies_ms else "-",
            round(percentile(o.latencies_ms, 99)) if o.latencies_ms else "-",
            o.not_complete,
            round(o.server_cpu_s, 2),
            round(o.server_cpu_s * 1000 / o.ended, 2) if o.ended else "-",
        ]

    print()
    print(
        table(
            [
                "system",
                "jobs",
                "accepted",
                "submit s",
                "submit/s",
                "all ended s",
                "jobs/s",
                "p50 ms",
                "p99 ms",
                "not complete",
                "server CPU s",
                "CPU ms/job",
            ],
            [row(o) for o in outcomes],
        )
    )
    print()
    for o in outcomes:
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(o.statuses.items()) if n)
        print(f"{o.system}: statuses: {statuses or '-'}; all seen ended after {o.seen_s:.2f} s")
        if o.submit_errors:
            print(f"{o.system}: refused or failed submits: {dict(o.submit_errors)}")
        for note in o.notes:
            print(f"{o.system}: {note}")
    by_name = {o.system: o for o in outcomes}
    if moto_floor is not None:
        print(
            f"moto floor: {moto_floor.jobs} jobs x {moto_floor.calls_per_job} AWS calls from "
            f"{moto_floor.threads} threads in {moto_floor.seconds:.2f} s = "
            f"{moto_floor.jobs_per_s:.1f} jobs/s (moto CPU {moto_floor.moto_cpu_s:.2f} s)"
        )
        if "tickwork" in by_name:
            print(
                f"Throughput ratio Tickwork / moto floor: "
                f"{by_name['tickwork'].throughput / moto_floor.jobs_per_s:.2f}"
            )
    if "tickwork" in by_name and "arq" in by_name:
        tickwork, arq = by_name["tickwork"], by_name["arq"]
        ratio = tickwork.throughput / arq.throughput
        print(
            f"Throughput ratio Tickwork / ARQ: {ratio:.3f} "
            f"(ARQ is {1 / ratio:.1f}x Tickwork's); submit rate ratio "
            f"{tickwork.submit_rate / arq.submit_rate:.3f}"
        )
    print(
        f"Settings: {args.jobs} jobs, {args.clients} clients, Tickwork workers {args.workers} "
        f"(moto floor {args.floor_threads} threads), ARQ max_jobs "
        f"{args.arq_max_jobs}, poll_delay {args.arq_poll_delay:g} s, wait by {args.wait}"
    )
    print(f"Machine: {machine_facts()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs for each system (200)")
    parser.add_argument(
        "--clients", type=int, default=4, help="client threads / concurrent enqueuers (4)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="TICKWORK_WORKERS of the local stack (4)"
    )
    parser.add_argument(
        "--arq-max-jobs",
        type=int,
        help="ARQ worker's max_jobs (default: 10 x --workers, the jobs Tickwork's workers "
        "hold at once: each receives SQS batches of up to 10)",
    )
    parser.add_argument(
        "--arq-poll-delay",
        type=float,
        default=0.5,
        help="ARQ worker's poll_delay, s (ARQ's default: 0.5; it bounds ARQ's rate, see README)",
    )
    parser.add_argument(
        "--floor-threads",
        type=int,
        default=8,
        help="boto3 threads replaying one job's AWS calls for moto's floor (8)",
    )
    parser.add_argument(
        "--tick-seconds", type=float, default=5, help="TICKWORK_TICK_SECONDS of the stack (5)"
    )
    parser.add_argument(
        "--wait",
        choices=("depth", "result"),
        default="depth",
        help="Tickwork: poll GET /v1/queue/depth (default) or long-poll each job's result",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="period of the waits' polls, s (1; a depth call is 5 COUNT/first-item Queries, "
        "which moto answers by walking the table, so polling faster slows the stack)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="longest wait after submitting, s (900)"
    )
    parser.add_argument(
        "--only", choices=("tickwork", "floor", "arq"), help="run one measurement only"
    )
    parser.add_argument("--log", help="write the local stack's output to this file")
    args = parser.parse_args(argv)
    if args.arq_max_jobs is None:
        args.arq_max_jobs = 10 * args.workers
    print(f"Machine: {machine_facts()}", flush=True)

    outcomes: list[Outcome] = []
    moto_floor: Floor | None = None
    for name in ("tickwork", "floor", "arq"):
        if args.only not in (None, name):
            continue
        if name == "floor":
            moto_floor = run_floor(args)
            continue
        outcome = run_tickwork(args) if name == "tickwork" else run_arq(args)
        if outcome is not None:
            outcomes.append(outcome)
    if outcomes or moto_floor:
        report(outcomes, moto_floor, args)
    return 0 if outcomes or moto_floor else 1


def run_floor(args: argparse.Namespace) -> Floor:
    fake_aws_credentials()
    quiet_logs()
    calls, job_id = record_one_job()
    print(f"moto floor: one job makes {len(calls)} AWS calls; replaying", flush=True)
    return floor(calls, job_id, args.jobs, args.floor_threads)


if __name__ == "__main__":
    sys.exit(main())
