"""The other two systems of `bench.idle_cost`, each as a child process of its own,
holding the cron schedules the parent wrote (a JSON list of `[minute, hour]`
pairs, daily, in UTC):

    .venv/bin/python -m bench.idle_crons arq --port 6390 --schedules crons.json
    .venv/bin/python -m bench.idle_crons celery --schedules crons.json --db DIR/celerybeat-schedule

* `arq`: one ARQ `Worker` with one `arq.cron` job per pair (a coroutine that does
  nothing; none is due while the parent measures), ARQ's defaults otherwise
  (`poll_delay` 0.5 s, health check every 3600 s), `timezone` UTC. It prints
  `ready` once its first poll, which computes every job's next run, is done.
* `celery`: Celery beat (`celery.beat.Service`, as `celery beat` runs it) with
  one `crontab` entry per pair in `beat_schedule`, its default scheduler
  (`PersistentScheduler`, a shelve file at `--db`), the `memory://` broker (beat
  opens it only to send a due task), `timezone` UTC, `result_expires` None (so
  beat adds no `celery.backend_cleanup` entry of its own: it holds exactly the
  pairs). The scheduler prints `tick <seconds it will sleep>` after each tick
  and `sync` after each sync of the shelve; the parent starts measuring at the
  first `tick`.

Both stop on SIGINT (their own handlers) or when standard input closes (the
parent is gone). Only ARQ, or only Celery, is imported in each: the process's
CPU is that system's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC
from pathlib import Path
from typing import Any


def read_schedules(path: Path) -> list[tuple[int, int]]:
    """The parent's `[minute, hour]` pairs."""
    return [(int(m), int(h)) for m, h in json.loads(path.read_text())]


def _stop_when_stdin_closes() -> None:
    sys.stdin.read()
    os.kill(os.getpid(), signal.SIGINT)


# ---------------------------------------------------------------- ARQ
def run_arq(port: int, schedules: list[tuple[int, int]]) -> None:
    from arq.connections import RedisSettings
    from arq.cron import cron
    from arq.worker import Worker

    async def idle(ctx: dict[str, Any]) -> None:
        """The cron jobs' coroutine: never due while measured."""

    class ReadyWorker(Worker):
        """ARQ's Worker, saying once that its first poll is done."""

        said_ready = False

        async def heart_beat(self) -> None:
            await super().heart_beat()
            if not self.said_ready:
                self.said_ready = True
                print("ready", flush=True)

    jobs = [
        cron(idle, name=f"idle-{i:06d}", minute=minute, hour=hour)
        for i, (minute, hour) in enumerate(schedules)
    ]
    worker = ReadyWorker(
        cron_jobs=jobs,
        redis_settings=RedisSettings(host="127.0.0.1", port=port),
        timezone=UTC,
    )
    worker.run()


# ---------------------------------------------------------------- Celery
def run_celery(schedules: list[tuple[int, int]], db: Path) -> None:
    from celery import Celery
    from celery.beat import PersistentScheduler, Service
    from celery.schedules import crontab

    class ReportingScheduler(PersistentScheduler):  # type: ignore[misc]
        """Celery's default scheduler, saying when it ticks and syncs."""

        def tick(self, *args: Any, **kwargs: Any) -> Any:
            interval = super().tick(*args, **kwargs)
            print(f"tick {interval:.3f}", flush=True)
            return interval

        def sync(self) -> None:
            super().sync()
            print("sync", flush=True)

    app = Celery("idle", broker="memory://")
    app.conf.update(
        timezone="UTC",
        enable_utc=True,
        result_expires=None,
        beat_schedule={
            f"idle-{i:06d}": {"task": "idle.noop", "schedule": crontab(minute=m, hour=h)}
            for i, (m, h) in enumerate(schedules)
        },
    )
    Service(app, schedule_filename=str(db), scheduler_cls=ReportingScheduler).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="system", required=True)
    arq = sub.add_parser("arq", help="an ARQ worker with the cron jobs")
    arq.add_argument("--port", type=int, required=True, help="Redis port on 127.0.0.1")
    arq.add_argument("--schedules", type=Path, required=True)
    celery = sub.add_parser("celery", help="Celery beat with the crontab entries")
    celery.add_argument("--schedules", type=Path, required=True)
    celery.add_argument("--db", type=Path, required=True, help="PersistentScheduler's file")
    args = parser.parse_args(argv)
    schedules = read_schedules(args.schedules)
    # A parent started in the background hands its children SIGINT ignored: Celery
    # beat stops on KeyboardInterrupt (and saves its schedule), so it must arrive.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_stop_when_stdin_closes, daemon=True).start()
    if args.system == "arq":
        run_arq(args.port, schedules)
    else:
        run_celery(schedules, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
