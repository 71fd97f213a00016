"""The ARQ side of `bench.queue_throughput`: one ARQ worker with an `echo` function.

    .venv/bin/python -m bench.arq_worker --port 6390 --max-jobs 40 [--poll-delay 0.5]

Run by `bench.queue_throughput` as a child process, so the worker's CPU is its
own, as the local stack's is. It stops on SIGINT/SIGTERM (ARQ's own handlers:
running jobs finish) or when its standard input closes (the parent is gone).
ARQ's defaults otherwise, as a user would run it: `poll_delay` 0.5 s (unless
`--poll-delay`), `queue_read_limit` max(5 x max_jobs, 100), results kept 3600 s,
no logging set up (so no line per job). The worker reads up to
`queue_read_limit` job ids per poll and starts them as `max_jobs` slots free,
then sleeps what is left of `poll_delay`: with the defaults at most ~200 jobs
start per 0.5 s however idle the worker is.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from arq.connections import RedisSettings
from arq.worker import run_worker


async def echo(ctx: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Tickwork's `echo` action: returns its args."""
    return args


def _stop_when_stdin_closes() -> None:
    sys.stdin.read()
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="Redis port on 127.0.0.1")
    parser.add_argument("--max-jobs", type=int, required=True, help="ARQ's max_jobs")
    parser.add_argument(
        "--poll-delay", type=float, default=0.5, help="ARQ's poll_delay, s (its default: 0.5)"
    )
    args = parser.parse_args(argv)
    threading.Thread(target=_stop_when_stdin_closes, daemon=True).start()
    run_worker(
        {"functions": [echo]},
        redis_settings=RedisSettings(host="127.0.0.1", port=args.port),
        max_jobs=args.max_jobs,
        poll_delay=args.poll_delay,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
