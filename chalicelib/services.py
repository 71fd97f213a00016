"""The object graph of a running Tickwork: settings, clock, ids, stores, services.

Built lazily on first use from the environment (a Lambda cold start pays for
it once); tests and the local stack install their own with `use()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.actions import Registry, registry
from chalicelib.auth import TokenService
from chalicelib.clock import Clock, IdFactory, SortableIds, SystemClock
from chalicelib.executor import Executor
from chalicelib.messaging import JobQueue
from chalicelib.queue import QueueService
from chalicelib.runs import RunService
from chalicelib.settings import Settings
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.tables import configure
from chalicelib.storage.tasks import TaskStore
from chalicelib.storage.tokens import TokenStore
from chalicelib.tasks import TaskService
from chalicelib.tick import Tick


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    ids: IdFactory
    tokens: TokenService
    tasks: TaskService
    runs: RunService
    tick: Tick
    executor: Executor
    queue: JobQueue
    jobs: QueueService

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        *,
        actions: Registry | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Services:
        clock = clock or SystemClock()
        ids = ids or SortableIds(clock)
        configure(settings)
        task_store = TaskStore(settings)
        job_store = JobStore(settings)
        queue = JobQueue(settings)
        registered = actions or registry(settings)
        return cls(
            settings=settings,
            clock=clock,
            ids=ids,
            tokens=TokenService(TokenStore(), clock, ids),
            tasks=TaskService(task_store, clock, ids, max_args_bytes=settings.max_args_bytes),
            runs=RunService(task_store, job_store, queue, clock, ids),
            tick=Tick(
                task_store,
                job_store,
                queue,
                clock,
                shards=settings.due_shards,
                lookahead_s=settings.lookahead_s,
            ),
            executor=Executor(
                job_store,
                task_store,
                queue,
                registered,
                clock,
                sleep,
                settings=settings,
            ),
            queue=queue,
            jobs=QueueService(job_store, queue, registered, clock, sleep),
        )


_current: Services | None = None


def services() -> Services:
    """The process's services, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Services.build(Settings.from_env())
    return _current


def use(replacement: Services | None) -> None:
    """Install the services every handler uses (None: rebuild from the environment)."""
    global _current
    _current = replacement
    if replacement is not None:
        configure(replacement.settings)
