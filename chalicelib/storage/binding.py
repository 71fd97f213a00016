"""One stage's tables: the models of `tables` bound to the stage's table names
and endpoint, per instance rather than per process.

`bind_tables(settings)` makes, for each model, a subclass whose own `Meta`
names the stage's table, region, endpoint and client settings; the model
classes of `tables` are never written to and never talk to DynamoDB. PynamoDB
copies each index onto the subclass (bound to it), so `tables.jobs.by_task`
queries the stage's jobs table. Each subclass has its own `DoesNotExist`
(derived from `pynamodb.exceptions.DoesNotExist`, not from the base model's):
catch the bound class's.

All of a stage's models, and its transactions, go through one PynamoDB
`Connection` and so one botocore client. PynamoDB would make a connection per
model, each with a botocore session of its own that loads DynamoDB's service
model anew: ~80 ms of CPU apiece, paid again by every model a cold Lambda
function touches. A botocore client is safe to share between threads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pynamodb.connection import Connection
from pynamodb.models import Model

from chalicelib.settings import TABLES, Settings
from chalicelib.storage.tables import (
    MAX_RETRY_ATTEMPTS,
    ApprovalRecord,
    AttemptRecord,
    JobRecord,
    MetricRecord,
    TaskRecord,
    TokenRecord,
    UniqueRecord,
)

M = TypeVar("M", bound=Model)

#: Distinct bindings kept at once. A deployed process binds one stage; tests
#: bind one per test, and a binding dropped here lives on in the Services that
#: hold it (a later bind of its stage makes new clients).
CACHED_BINDINGS = 8


@dataclass(frozen=True)
class Binding:
    """What a stage's models are bound to: the key of the cache of bindings."""

    #: Physical table names by logical name, as (logical, physical) pairs.
    table_names: tuple[tuple[str, str], ...]
    region: str
    #: The endpoint (moto's in tests and the local stack); None: AWS's own.
    host: str | None
    max_pool_connections: int
    max_retry_attempts: int
    #: None: PynamoDB's default.
    read_timeout_s: float | None
    #: Keys the clients sign with; None: botocore's own search (the Lambda role's).
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)

    def table_name(self, logical: str) -> str:
        return dict(self.table_names)[logical]


@dataclass(frozen=True)
class Tables:
    """A stage's models, each a subclass bound to that stage's table, and the
    one connection they and the stage's transactions share (its client is made
    on the first call)."""

    binding: Binding
    tasks: type[TaskRecord]
    jobs: type[JobRecord]
    attempts: type[AttemptRecord]
    approvals: type[ApprovalRecord]
    tokens: type[TokenRecord]
    metrics: type[MetricRecord]
    uniques: type[UniqueRecord]
    connection: Connection

    @property
    def models(self) -> tuple[type[Model], ...]:
        return (
            self.tasks,
            self.jobs,
            self.attempts,
            self.approvals,
            self.tokens,
            self.metrics,
            self.uniques,
        )

    def connect(self) -> None:
        """Make the stage's botocore client now. PynamoDB makes it on the first
        call and does not lock: threads that start together (the local stack's
        eight shard passes at its first tick) would each make one, ~0.1 s of CPU
        apiece, and a stop right after a start waited for them. A Lambda
        function does not call this: its first call makes the client."""
        self.connection.client  # noqa: B018 (made on access)


def bind_tables(
    settings: Settings,
    *,
    max_retry_attempts: int = MAX_RETRY_ATTEMPTS,
    read_timeout_s: float | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
) -> Tables:
    """The stage's tables. The same object for the same binding (so building
    Services twice for a stage makes no new clients); two stages, two
    independent sets. `max_retry_attempts`: PynamoDB's retries of a throttled
    or failed call; `read_timeout_s`: its socket read timeout; the keys: what
    the clients sign with, where not the environment's (a test acting as each
    Lambda function in turn)."""
    return _bind(
        Binding(
            table_names=tuple((logical, settings.table_name(logical)) for logical in TABLES),
            region=settings.region,
            host=settings.aws_endpoint_url,
            max_pool_connections=settings.aws_max_connections,
            max_retry_attempts=max_retry_attempts,
            read_timeout_s=read_timeout_s,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
        )
    )


@functools.lru_cache(maxsize=CACHED_BINDINGS)
def _bind(binding: Binding) -> Tables:
    connection = Connection(
        region=binding.region,
        host=binding.host,
        read_timeout_seconds=binding.read_timeout_s,
        max_retry_attempts=binding.max_retry_attempts,
        max_pool_connections=binding.max_pool_connections,
        aws_access_key_id=binding.aws_access_key_id,
        aws_secret_access_key=binding.aws_secret_access_key,
    )
    return Tables(
        binding=binding,
        tasks=_bound(TaskRecord, binding, connection),
        jobs=_bound(JobRecord, binding, connection),
        attempts=_bound(AttemptRecord, binding, connection),
        approvals=_bound(ApprovalRecord, binding, connection),
        tokens=_bound(TokenRecord, binding, connection),
        metrics=_bound(MetricRecord, binding, connection),
        uniques=_bound(UniqueRecord, binding, connection),
        connection=connection,
    )


def _bound(model: type[M], binding: Binding, connection: Connection) -> type[M]:
    """A subclass of `model` on the binding's table, whose calls go through
    `connection`. Its `Meta` is a new class (a subclass of the model's): the
    model's own is left as it is."""
    base_meta: Any = model.Meta
    table_name = binding.table_name(base_meta.logical_name)
    meta: dict[str, Any] = {
        "table_name": table_name,
        "region": binding.region,
        "host": binding.host,
        "max_pool_connections": binding.max_pool_connections,
        "max_retry_attempts": binding.max_retry_attempts,
        "aws_access_key_id": binding.aws_access_key_id,
        "aws_secret_access_key": binding.aws_secret_access_key,
    }
    if binding.read_timeout_s is not None:
        meta["read_timeout_seconds"] = binding.read_timeout_s
    namespace = {
        "Meta": type("Meta", (base_meta,), meta),
        "__module__": __name__,
        "__qualname__": f"{model.__name__}[{table_name}]",
    }
    # The model's metaclass (PynamoDB's), as a `class` statement would use.
    metaclass: Any = type(model)
    bound = cast(type[M], metaclass(model.__name__, (model,), namespace))
    # PynamoDB's table connection of the class (made here, before any thread
    # can race for it) names the table and its keys; its calls are handed to
    # the shared connection, which must know the table's keys too.
    table = bound._get_connection()
    connection.add_meta_table(table.get_meta_table())
    table.connection = connection
    return bound
