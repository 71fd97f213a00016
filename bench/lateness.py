"""Firing lateness of per-second schedules on the local stack (`make run`).

    .venv/bin/python -m bench.lateness                       # 5 tasks, 60 s
    .venv/bin/python -m bench.lateness --tasks 10 --seconds 120 --schedule '* * * * * *'

Starts `python -m infra.local_stack` as a subprocess (a free port, a temporary
state dir, an admin token), waits for `Tickwork ready`, creates the tasks over
HTTP (action `echo`; `--schedule` may be given several times, the schedules are
dealt out in turn; default: `* * * * * *` and `*/2 * * * * *`), lets them run,
reads every run back over HTTP (`GET /v1/scheduled-tasks/{id}/runs`), and stops
the stack with SIGINT.

Lateness of a run = `started_at` - `scheduled_for` (the fire second), in ms.
Only fire times inside the measured window count: from one tick period after
the task's creation (firings before the first tick that sees a task are late by
design, up to a tick period; they are reported apart) to 3 s before the runs
are read. In the window, each fire time of the schedule should have exactly one
run: "missed" fire times have none that started, "doubled" ones have more than
one job or a job that started more than once (attempt > 1). "early" runs
started before their second (they never should).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._common import percentile, table
from chalicelib.schedules.model import fire_times, parse_schedule, parse_timezone
from infra.stack_process import StackProcess, free_port

TASKS = "/v1/scheduled-tasks"
#: Fire times this close to the moment the runs are read are left out (not run yet).
TAIL_MARGIN_S = 3.0


class Stack(StackProcess):
    """The local stack under measurement, with its tick and workers settings."""

    def __init__(
        self,
        port: int,
        state_dir: str,
        admin_secret: str,
        tick_s: float,
        *,
        workers: int | None = None,
    ) -> None:
        env = {"TICKWORK_TICK_SECONDS": str(tick_s)}
        if workers:
            env["TICKWORK_WORKERS"] = str(workers)
        super().__init__(Path(state_dir), port, admin_secret, env=env, keep_lines=5000)
        self.tick_s = tick_s

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=30,
        )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class TaskResult:
    id: str
    schedule: str
    lateness_ms: list[float] = field(default_factory=list)
    expected: int = 0
    missed: int = 0
    doubled: int = 0
    early: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    startup_runs: int = 0
    startup_max_ms: float = 0.0


def all_runs(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = client.get(f"{TASKS}/{task_id}/runs", params=params)
        response.raise_for_status()
        body = response.json()
        jobs += body["jobs"]
        cursor = body.get("next_cursor")
        if not cursor:
            return jobs


def measure(
    task: dict[str, Any], jobs: list[dict[str, Any]], tick_s: float, end: datetime
) -> TaskResult:
    result = TaskResult(task["id"], task["schedule"])
    created = parse_time(task["created_at"])
    settled = created + timedelta(seconds=tick_s + 1)
    expected: list[datetime] = []
    for at in fire_times(
        parse_schedule(task["schedule"]), parse_timezone("UTC"), settled, anchor=created
    ):
        if at > end:
            break
        expected.append(at)
    result.expected = len(expected)

    by_time: dict[datetime, list[dict[str, Any]]] = {}
    for job in jobs:
        by_time.setdefault(parse_time(job["scheduled_for"]), []).append(job)
    for at, same in by_time.items():
        started = [j for j in same if j.get("started_at")]
        late = [(parse_time(j["started_at"]) - at).total_seconds() * 1000 for j in started]
        if at <= settled:  # before the first tick that saw the task
            result.startup_runs += len(started)
            result.startup_max_ms = max([result.startup_max_ms, *late])
            continue
        if at > end:
            continue
        result.statuses.update(j["status"] for j in same)
        result.lateness_ms += late
        result.early += sum(1 for ms in late if ms < 0)
        if len(same) > 1 or any(int(j.get("attempt", 0)) > 1 for j in same):
            result.doubled += 1
    result.missed = sum(
        1 for at in expected if not any(j.get("started_at") for j in by_time.get(at, []))
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5, help="number of tasks (5)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they run (60)")
    parser.add_argument(
        "--schedule",
        action="append",
        help="a 6-field cron (seconds first); repeat to mix "
        "(default: '* * * * * *' and '*/2 * * * * *')",
    )
    parser.add_argument(
        "--tick-seconds", type=float, default=5, help="TICKWORK_TICK_SECONDS of the stack (5)"
    )
    parser.add_argument(
        "--workers", type=int, help="TICKWORK_WORKERS of the stack (its default: 4)"
    )
    parser.add_argument("--log", help="write the stack's output to this file")
    args = parser.parse_args(argv)
    schedules: list[str] = args.schedule or ["* * * * * *", "*/2 * * * * *"]

    with tempfile.TemporaryDirectory(prefix="tickwork-bench-") as state_dir:
        secret = "tw_bench-" + secrets.token_urlsafe(24)
        stack = Stack(
            free_port(),
            state_dir,
            secret,
            args.tick_seconds,
            workers=args.workers,
        )
        ready_s = stack.start()
        print(f"local stack ready in {ready_s:.1f} s on {stack.url}", flush=True)
        try:
            with stack.client() as client:
                tasks = []
                for i in range(args.tasks):
                    response = client.post(
                        TASKS,
                        json={
                            "name": f"lateness-{i}",
                            "schedule": schedules[i % len(schedules)],
                            "action": "echo",
                            "args": {"i": i},
                        },
                    )
                    response.raise_for_status()
                    tasks.append(response.json())
                print(f"created {len(tasks)} tasks; running {args.seconds:.0f} s ...", flush=True)
                time.sleep(args.seconds)
                end = datetime.now(UTC) - timedelta(seconds=TAIL_MARGIN_S)
                results = [
                    measure(task, all_runs(client, task["id"]), args.tick_seconds, end)
                    for task in tasks
                ]
        finally:
            code = stack.stop()
            if args.log:
                with open(args.log, "w") as handle:
                    handle.writelines(stack.output)
    report(results, code)
    print(f"Load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


def report(results: list[TaskResult], exit_code: int) -> None:
    def stats(values: list[float]) -> list[object]:
        return [
            len(values),
            round(percentile(values, 50)),
            round(percentile(values, 90)),
            round(percentile(values, 99)),
            round(max(values)) if values else "-",
        ]

    rows: list[list[object]] = [
        [r.id, r.schedule, r.expected, *stats(r.lateness_ms), r.missed, r.doubled, r.early]
        for r in results
    ]
    everything = [ms for r in results for ms in r.lateness_ms]
    rows.append(
        [
            "all",
            "",
            sum(r.expected for r in results),
            *stats(everything),
            sum(r.missed for r in results),
            sum(r.doubled for r in results),
            sum(r.early for r in results),
        ]
    )
    print()
    print("Lateness (started_at - fire second) in ms, measured window:")
    print(
        table(
            [
                "task",
                "schedule",
                "fire times",
                "runs",
                "p50",
                "p90",
                "p99",
                "max",
                "missed",
                "doubled",
                "early",
            ],
            rows,
        )
    )
    statuses: Counter[str] = Counter()
    for r in results:
        statuses += r.statuses
    print()
    print(f"Job statuses in the window: {dict(statuses)}")
    startup = [r for r in results if r.startup_runs]
    if startup:
        print(
            f"Before the first tick that saw each task: {sum(r.startup_runs for r in startup)} "
            f"runs, up to {max(r.startup_max_ms for r in startup):.0f} ms late (by design)"
        )
    print(f"Local stack exit code after SIGINT: {exit_code}")


if __name__ == "__main__":
    sys.exit(main())
