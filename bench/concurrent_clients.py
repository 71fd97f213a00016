"""Many concurrent clients on the local stack (`make run`): connection errors,
latency, and whether every accepted job ends.

    .venv/bin/python -m bench.concurrent_clients --clients 50 --seconds 60

Starts `python -m infra.local_stack` as `bench.lateness` does (a free port, a
temporary state dir, an admin token). Then `--clients` threads, each with one
`httpx.Client` of its own (a connection pool that keeps connections alive),
loop for `--seconds`: `POST /v1/queue/jobs` (an `echo` job), then
`GET /v1/queue/depth`, as fast as the answers come. Afterwards it waits until
the project has nothing scheduled, queued, active or awaiting approval (at most
`--timeout` s) and pages through `GET /v1/queue/jobs?status=complete`.

Printed: requests and errors by kind (an exception such as `ReadError: [Errno
104] Connection reset by peer`, or an HTTP status that is not the expected
one); p50/p99 of submit and depth latency (ms, answered requests only); the TCP
connections the clients opened (httpx's `trace` extension: one per client when
the server keeps connections alive, one per request when it does not); jobs
accepted (202) against jobs found complete. *lost* = accepted jobs not found
complete; *unacknowledged* = complete jobs whose submit the client saw fail (the
server took the job, the answer did not arrive).
"""

from __future__ import annotations

import argparse
import errno
import secrets
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench._common import machine_facts, percentile, table
from bench.lateness import Stack
from infra.stack_process import free_port

JOBS = "/v1/queue/jobs"
DEPTH = "/v1/queue/depth"
WAITING = ("scheduled", "queued", "active", "awaiting_approval")
#: Longest error text kept in a kind (the rest varies per request: ports, ids).
KIND_CHARS = 70


def error_kind(error: BaseException) -> str:
    """What went wrong with one request, as a short stable label: the httpx
    exception's name and the OS error under it (`ReadError: [Errno 104]
    Connection reset by peer`), else its message."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.errno is not None:
        name = errno.errorcode.get(cause.errno, str(cause.errno))
        detail = f"{name} {cause.strerror or ''}".strip()
    else:
        detail = str(error) or type(error).__name__
    return f"{type(error).__name__}: {detail}"[:KIND_CHARS]


@dataclass
class Tally:
    """What the clients saw; merged from each client's own."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"submit": [], "depth": []})
    connections: int = 0
    accepted: set[str] = field(default_factory=set)
    #: Submits that failed without an answer: the server may have taken the job.
    unanswered_submits: int = 0

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for kind, values in other.latency_ms.items():
            self.latency_ms.setdefault(kind, []).extend(values)
        self.connections += other.connections
        self.accepted |= other.accepted
        self.unanswered_submits += other.unanswered_submits


def job_accounts(accepted: set[str], complete: set[str]) -> dict[str, int]:
    """Accepted jobs against jobs found complete: lost (accepted, not complete)
    and unacknowledged (complete, never accepted as far as a client saw)."""
    return {
        "accepted": len(accepted),
        "complete": len(complete),
        "lost": len(accepted - complete),
        "unacknowledged": len(complete - accepted),
    }


def run_client(stack: Stack, deadline: float, timeout_s: float) -> Tally:
    """One client: submit, read the depth, again, until the deadline."""
    tally = Tally()

    def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            tally.connections += 1

    headers = {"Authorization": f"Bearer {stack.admin_secret}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=timeout_s) as client:
        while time.monotonic() < deadline:
            for kind, method, path, body, expected in (
                ("submit", "POST", JOBS, {"action": "echo", "args": {"n": 1}}, 202),
                ("depth", "GET", DEPTH, None, 200),
            ):
                tally.requests[kind] += 1
                started = time.perf_counter()
                try:
                    response = client.request(method, path, json=body, extensions={"trace": trace})
                except httpx.HTTPError as exc:
                    tally.errors[f"{kind} {error_kind(exc)}"] += 1
                    if kind == "submit":
                        tally.unanswered_submits += 1
                    continue
                tally.latency_ms[kind].append((time.perf_counter() - started) * 1000)
                if response.status_code != expected:
                    tally.errors[f"{kind} HTTP {response.status_code}"] += 1
                elif kind == "submit":
                    tally.accepted.add(response.json()["id"])
    return tally


def wait_until_idle(client: httpx.Client, timeout_s: float) -> dict[str, int]:
    """Poll the depth until nothing waits (or the timeout); the last depth."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(DEPTH)
        response.raise_for_status()
        depth: dict[str, int] = response.json()
        if not any(depth[name] for name in WAITING) or time.monotonic() > deadline:
            return depth
        time.sleep(1)


def complete_jobs(client: httpx.Client) -> set[str]:
    """Ids of every complete job of the project (a fresh state dir: all ours)."""
    ids: set[str] = set()
    params: dict[str, Any] = {"status": "complete", "limit": 200}
    while True:
        response = client.get(JOBS, params=params)
        response.raise_for_status()
        page = response.json()
        ids |= {job["id"] for job in page["jobs"]}
        if not page.get("next_cursor"):
            return ids
        params["cursor"] = page["next_cursor"]


def measure(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="tickwork-bench-") as state_dir:
        secret = "tw_bench-" + secrets.token_urlsafe(24)
        stack = Stack(free_port(), state_dir, secret, args.tick_seconds, workers=args.workers)
        ready_s = stack.start()
        print(f"Local stack ready in {ready_s:.1f} s on {stack.url}", flush=True)
        total = Tally()
        try:
            deadline = time.monotonic() + args.seconds
            results: list[Tally] = []
            lock = threading.Lock()

            def client_thread() -> None:
                tally = run_client(stack, deadline, args.request_timeout)
                with lock:
                    results.append(tally)

            threads = [threading.Thread(target=client_thread) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for tally in results:
                total.add(tally)
            print(f"Load after the clients: {machine_facts()}", flush=True)
            with stack.client() as client:
                depth = wait_until_idle(client, args.timeout)
                complete = complete_jobs(client)
        finally:
            code = stack.stop()
    report(total, complete, depth, args)
    if code:
        print(f"The local stack exited with {code} after SIGINT")
    accounts = job_accounts(total.accepted, complete)
    return 1 if sum(total.errors.values()) or accounts["lost"] else 0


def report(
    total: Tally, complete: set[str], depth: dict[str, int], args: argparse.Namespace
) -> None:
    print()
    print(f"{args.clients} clients for {args.seconds:g} s")
    rows = []
    for kind in ("submit", "depth"):
        values = total.latency_ms[kind]
        errors = sum(n for name, n in total.errors.items() if name.startswith(kind + " "))
        rows.append(
            [kind, total.requests[kind], errors, percentile(values, 50), percentile(values, 99)]
        )
    print(table(["request", "sent", "errors", "p50 ms", "p99 ms"], rows))
    print()
    print(f"errors by kind: {dict(total.errors) or 'none'}")
    print(f"TCP connections opened by the clients: {total.connections}")
    accounts = job_accounts(total.accepted, complete)
    print(
        "jobs: {accepted} accepted, {complete} found complete, {lost} lost, "
        "{unacknowledged} unacknowledged".format(**accounts)
    )
    waiting = {name: depth[name] for name in WAITING if depth[name]}
    if waiting:
        print(f"still waiting after {args.timeout:g} s: {waiting}")
    print(f"Machine: {machine_facts()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="client threads (50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they run, s (60)")
    parser.add_argument(
        "--workers", type=int, default=4, help="TICKWORK_WORKERS of the local stack (4)"
    )
    parser.add_argument(
        "--tick-seconds", type=float, default=5, help="TICKWORK_TICK_SECONDS of the stack (5)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=60, help="httpx timeout of each request, s (60)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="longest wait for the jobs to end, s (300)"
    )
    args = parser.parse_args(argv)
    print(f"Machine: {machine_facts()}", flush=True)
    return measure(args)


if __name__ == "__main__":
    raise SystemExit(main())
