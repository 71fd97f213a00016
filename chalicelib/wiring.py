"""The object graph of a running Tickwork: settings, clock, ids, stores, services.

Built lazily from the environment (a Lambda cold start pays for it once);
tests and the local stack install their own with `use()`. Each Services holds
its stage's tables (`storage.binding`): two built for two stages in one
process use each their own.

Each part is built on its first use, and the module that defines it is
imported then (`@part`): the functions share one `app` module, and a
function's first call should pay only for the parts its handler reads (the
executor never builds the API's services, the API never the executor). This
module is one of the two places where imports wait for first use (the other:
`api/mount.py`, a route's module on its first request); docs/decisions.md
(Cold start) says why.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from chalicelib.clock import Clock, IdFactory, SortableIds, SystemClock
from chalicelib.logs import configure_logging
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.actions import Registry
    from chalicelib.approvals.service import ApprovalService
    from chalicelib.auth.service import TokenService
    from chalicelib.engine.executor import Executor
    from chalicelib.engine.fanout import StartShards
    from chalicelib.engine.tick import Tick
    from chalicelib.jobs.service import QueueService
    from chalicelib.jobs.sqs import JobQueue
    from chalicelib.metrics.service import JobMetrics
    from chalicelib.storage.attempts import AttemptStore
    from chalicelib.storage.binding import Tables
    from chalicelib.storage.job_listing import StageListing
    from chalicelib.storage.jobs import JobStore
    from chalicelib.storage.tasks import TaskStore
    from chalicelib.tasks.runs import RunService
    from chalicelib.tasks.service import TaskService

T = TypeVar("T")


class part(Generic[T]):
    """A part of `Services`, built once on first read, under the services' lock
    (the local stack's threads may ask for one at once; parts build parts, so
    the lock is reentrant). A part given to `Services.replace` is used as is."""

    def __init__(self, build: Callable[[Services], T]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, services: Services | None, owner: type) -> T:
        if services is None:
            raise AttributeError(self._name)
        built = services.__dict__
        if self._name not in built:
            with services._lock:
                if self._name not in built:
                    built[self._name] = self._build(services)
        return built[self._name]  # type: ignore[no-any-return]


class Services:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        *,
        actions: Registry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        start_shards: StartShards | None = None,
        tables: Tables | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ids = ids or SortableIds(self.clock)
        self._lock = threading.RLock()
        self._sleep = sleep
        self._given: dict[str, Any] = {
            "actions": actions,
            "start_shards": start_shards,
            "tables": tables,
        }

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
        """`actions`: the registry (default: `registry(settings)`). `start_shards`:
        how the minute's tick starts the shards' passes (default: an asynchronous
        invocation of `tick_shard` each). `tables`: the stage's (default:
        `bind_tables(settings)`). Nothing is built yet: each part on first use."""
        return cls(
            settings,
            clock,
            ids,
            actions=actions,
            sleep=sleep,
            start_shards=start_shards,
            tables=tables,
        )

    def replace(self, **parts: Any) -> Services:
        """A copy with these parts (`executor=...`) in place of its own; the parts
        built already are shared, the others built by each on first use."""
        copied = copy.copy(self)
        copied.__dict__ = {**self.__dict__, **parts, "_lock": threading.RLock()}
        return copied

    # -- stores -----------------------------------------------------------------

    @part
    def tables(self) -> Tables:
        """The stage's tables, which every store here uses."""
        from chalicelib.storage.binding import bind_tables

        return self._given["tables"] or bind_tables(self.settings)

    @part
    def task_store(self) -> TaskStore:
        from chalicelib.storage.tasks import TaskStore

        return TaskStore(self.settings, self.tables)

    @part
    def job_store(self) -> JobStore:
        from chalicelib.storage.jobs import JobStore

        return JobStore(self.settings, self.tables, observer=self.metrics.observe)

    @part
    def attempt_store(self) -> AttemptStore:
        """Every attempt of every job: its start, end, error and log."""
        from chalicelib.storage.attempts import AttemptStore

        return AttemptStore(self.tables)

    @part
    def registry(self) -> Registry:
        """The actions jobs may name."""
        from chalicelib.actions import registry

        return self._given["actions"] or registry(self.settings)

    @part
    def sqs(self) -> JobQueue:
        """The SQS client: sends job messages, knows the queues' URLs."""
        from chalicelib.jobs.sqs import JobQueue

        return JobQueue(self.settings)

    # -- services -----------------------------------------------------------------

    @part
    def metrics(self) -> JobMetrics:
        from chalicelib.metrics.service import JobMetrics, write_line
        from chalicelib.storage.metrics import MetricStore

        emf = write_line if self.settings.lambda_function_name else None
        return JobMetrics(MetricStore(self.tables), self.clock, emf=emf)

    @part
    def approvals(self) -> ApprovalService:
        from chalicelib.approvals.service import ApprovalService
        from chalicelib.storage.approvals import ApprovalStore

        settings = self.settings
        return ApprovalService(
            ApprovalStore(settings, self.tables, self.job_store),
            self.job_store,
            self.sqs,
            self.registry,
            self.clock,
            tasks=self.task_store,
            ttl_s=settings.approval_ttl_s,
            approval_actions=settings.approval_actions,
            approval_self=settings.approval_self,
            lookahead_s=settings.lookahead_s,
        )

    @part
    def tokens(self) -> TokenService:
        from chalicelib.auth.service import TokenService
        from chalicelib.storage.tokens import TokenStore

        return TokenService(TokenStore(self.tables), self.clock, self.ids)

    @part
    def tasks(self) -> TaskService:
        from chalicelib.tasks.service import TaskService

        return TaskService(
            self.task_store,
            self.clock,
            self.ids,
            self.registry,
            max_args_bytes=self.settings.max_args_bytes,
        )

    @part
    def runs(self) -> RunService:
        from chalicelib.tasks.runs import RunService

        return RunService(
            self.task_store,
            self.job_store,
            self.sqs,
            self.clock,
            self.ids,
            approvals=self.approvals,
            lookahead_s=self.settings.lookahead_s,
        )

    @part
    def queue(self) -> QueueService:
        """The queue API's service (`/v1/queue/...`): submissions, results, dead letters."""
        from chalicelib.jobs.service import QueueService

        return QueueService(
            self.job_store,
            self.attempt_store,
            self.sqs,
            self.registry,
            self.approvals,
            self.clock,
            self.ids,
            self._sleep,
            settings=self.settings,
        )

    @part
    def job_listing(self) -> StageListing:
        """Every project's jobs, newest first (the Synapse admin surface)."""
        from chalicelib.storage.job_listing import StageListing

        return StageListing(self.tables)

    # -- the engine -----------------------------------------------------------------

    @part
    def tick(self) -> Tick:
        from chalicelib.engine.fanout import LambdaShards
        from chalicelib.engine.tick import Tick

        return Tick(
            self.task_store,
            self.job_store,
            self.sqs,
            self.clock,
            shards=self.settings.due_shards,
            lookahead_s=self.settings.lookahead_s,
            approvals=self.approvals,
            start_shards=self._given["start_shards"] or LambdaShards(self.settings).start,
        )

    @part
    def executor(self) -> Executor:
        from chalicelib.engine.executor import Executor

        return Executor(
            self.job_store,
            self.task_store,
            self.sqs,
            self.registry,
            self.clock,
            self._sleep,
            settings=self.settings,
            approvals=self.approvals,
            attempts=self.attempt_store,
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
