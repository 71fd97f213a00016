"""The object graph of a running Tickwork: settings, clock, ids, stores, services.

Built lazily on first use from the environment (a Lambda cold start pays for
it once); tests and the local stack install their own with `use()`. Each
Services holds its stage's tables (`storage.binding`): two built for two
stages in one process use each their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.actions import Registry, registry
from chalicelib.approvals.service import ApprovalService
from chalicelib.auth.service import TokenService
from chalicelib.clock import Clock, IdFactory, SortableIds, SystemClock
from chalicelib.engine.executor import Executor
from chalicelib.engine.fanout import LambdaShards, StartShards
from chalicelib.engine.tick import Tick
from chalicelib.jobs.service import QueueService
from chalicelib.jobs.sqs import JobQueue
from chalicelib.logs import configure_logging
from chalicelib.metrics.service import JobMetrics, write_line
from chalicelib.settings import Settings
from chalicelib.storage.approvals import ApprovalStore
from chalicelib.storage.binding import Tables, bind_tables
from chalicelib.storage.job_listing import StageListing
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.metrics import MetricStore
from chalicelib.storage.tasks import TaskStore
from chalicelib.storage.tokens import TokenStore
from chalicelib.tasks.runs import RunService
from chalicelib.tasks.service import TaskService


@dataclass(frozen=True)
class Services:
    settings: Settings
    #: The stage's tables, which every store here uses.
    tables: Tables
    clock: Clock
    ids: IdFactory
    tokens: TokenService
    tasks: TaskService
    runs: RunService
    tick: Tick
    executor: Executor
    #: The SQS client: sends job messages, knows the queues' URLs.
    sqs: JobQueue
    #: The queue API's service (`/v1/queue/...`): submissions, results, dead letters.
    queue: QueueService
    metrics: JobMetrics
    approvals: ApprovalService
    #: Every project's jobs, newest first (the Synapse admin surface).
    job_listing: StageListing

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        *,
        actions: Registry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        start_shards: StartShards | None = None,
        tables: Tables | None = None,
    ) -> Services:
        """`start_shards`: how the minute's tick starts the shards' passes
        (default: an asynchronous invocation of `tick_shard` each). `tables`:
        the stage's (default: `bind_tables(settings)`)."""
        clock = clock or SystemClock()
        ids = ids or SortableIds(clock)
        tables = tables or bind_tables(settings)
        task_store = TaskStore(settings, tables)
        metrics = JobMetrics(
            MetricStore(tables), clock, emf=write_line if settings.lambda_function_name else None
        )
        job_store = JobStore(settings, tables, observer=metrics.observe)
        sqs = JobQueue(settings)
        registered = actions or registry(settings)
        approvals = ApprovalService(
            ApprovalStore(settings, tables, job_store),
            job_store,
            sqs,
            registered,
            clock,
            tasks=task_store,
            ttl_s=settings.approval_ttl_s,
            approval_actions=settings.approval_actions,
            approval_self=settings.approval_self,
            lookahead_s=settings.lookahead_s,
        )
        return cls(
            settings=settings,
            tables=tables,
            clock=clock,
            ids=ids,
            tokens=TokenService(TokenStore(tables), clock, ids),
            tasks=TaskService(
                task_store, clock, ids, registered, max_args_bytes=settings.max_args_bytes
            ),
            runs=RunService(
                task_store,
                job_store,
                sqs,
                clock,
                ids,
                approvals=approvals,
                lookahead_s=settings.lookahead_s,
            ),
            tick=Tick(
                task_store,
                job_store,
                sqs,
                clock,
                shards=settings.due_shards,
                lookahead_s=settings.lookahead_s,
                approvals=approvals,
                start_shards=start_shards or LambdaShards(settings).start,
            ),
            executor=Executor(
                job_store,
                task_store,
                sqs,
                registered,
                clock,
                sleep,
                settings=settings,
                approvals=approvals,
            ),
            sqs=sqs,
            metrics=metrics,
            queue=QueueService(
                job_store, sqs, registered, approvals, clock, ids, sleep, settings=settings
            ),
            approvals=approvals,
            job_listing=StageListing(tables),
        )


_current: Services | None = None


def services() -> Services:
    """The process's services, built from the environment on first use."""
    global _current
    if _current is None:
        settings = Settings.from_env()
        configure_logging(settings)  # once per cold start, before anything logs
        _current = Services.build(settings)
    return _current


def use(replacement: Services | None) -> None:
    """Install the services every handler uses (None: rebuild from the environment)."""
    global _current
    _current = replacement
