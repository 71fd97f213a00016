"""DynamoDB write and read units per run, from the requests the code really makes.

    .venv/bin/python -m bench.write_units                    # 1 KB and 10 KB logs, 20 tasks
    .venv/bin/python -m bench.write_units --tasks 10 --log-bytes 4096

Runs cron runs as `bench.requests_per_run` does (moto in this process, `Services.build`
with a ManualClock, K tasks `* * * * *`, the tick at the fire time, then the executor on the
messages in batches; the second minute is the one reported) with a bench-only action whose
log is `--log-bytes` long, and then `--queue-jobs` queue jobs (`QueueService.submit`, then the
executor). A botocore hook on every client the code makes sees each DynamoDB request; for
each write it reads the item before and after from moto with a client of its own (not
counted, not hooked), with all writes serialised between the two reads so that the images
are the write's own. Moto does not charge capacity, so the units are computed here from
AWS's documented rules:

- "DynamoDB item sizes and formats",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
  an item's size is the sum over its attributes of the UTF-8 length of the name plus the
  value: strings their UTF-8 bytes, numbers about 1 byte per two significant digits + 1,
  binary its raw bytes, booleans and null 1 byte, lists and maps 3 bytes + 1 byte per
  element + the elements; sets the sum of their elements.
- "Read and write capacity units" / "DynamoDB read and write operations",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html:
  a write costs 1 WCU per 1 KB of the item, rounded up, and an update or a delete is
  charged on the larger of the item before and after it; a failed conditional write still
  costs the item's size (at least 1 WCU). A strongly consistent read costs 1 RCU per 4 KB
  rounded up, an eventually consistent one half that; GetItem is charged on the whole item
  (a projection does not lower it, an absent item costs the minimum); a Query on the sum of
  the items it reads (before any filter), rounded up once per request.
- "Using Global Secondary Indexes", "Provisioned throughput considerations" (the GSI write
  amplification), https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html:
  a write of the table is written again into every index that holds the item, at the size
  of its projection there (the table's and the index's keys plus the projected
  attributes): an item entering a sparse index is a put, one leaving it a delete, a change
  of the index's key a delete plus a put, a change of projected attributes one write (here
  at the new entry's size), and a write that changes nothing the index holds costs nothing
  in it.
- "Amazon DynamoDB Transactions: how it works", "Capacity management for transactions",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html:
  every item in a transaction is read or written twice (prepare and commit), so twice the
  units, index writes included; a ConditionCheck is counted as a write of the unchanged item.

The *floor* is the same writes without index amplification: the table units alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from pydantic import BaseModel, ConfigDict, Field

from bench._common import (
    CallCounter,
    attach_to_new_clients,
    code_path,
    fake_aws_credentials,
    moto_stage,
    quiet_logs,
    table,
)
from bench.requests_per_run import Poller
from chalicelib.actions.base import Action, ActionContext, Registry
from chalicelib.actions.builtin import BUILTIN
from chalicelib.auth.service import Principal, Role
from chalicelib.clock import ManualClock
from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.service import JobSubmission
from chalicelib.settings import Settings
from chalicelib.tasks.model import MAX_LOG_BYTES, TaskSpec
from chalicelib.wiring import Services
from infra.resources import tables

Item = Mapping[str, Any]  # DynamoDB JSON: {"name": {"S": "value"}, ...}

WRITE_KB = 1024
READ_KB = 4096


# ---------------------------------------------------------------- sizes (pure)
def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits, rounded up, + 1."""
    digits = "".join(str(d) for d in Decimal(text).as_tuple().digits).strip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (`{"S": ...}`), without its name."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return _raw_len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(_raw_len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def _raw_len(data: bytes | str) -> int:
    """Raw bytes of a binary value: bytes from a response, base64 text on the wire."""
    return len(data) if isinstance(data, bytes) else len(base64.b64decode(data))


def item_size(item: Item | None) -> int:
    """Bytes of an item: its attributes' UTF-8 names plus their values (0 for none)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """WCU of a write of `size` bytes: per 1 KB rounded up, at least 1."""
    return max(1, math.ceil(size / WRITE_KB))


def read_units(size: int, *, consistent: bool) -> float:
    """RCU of a read of `size` bytes: per 4 KB rounded up, at least 1; half if eventual."""
    return max(1, math.ceil(size / READ_KB)) * (1.0 if consistent else 0.5)


# ---------------------------------------------------------------- indexes (pure)
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    #: ALL, KEYS_ONLY or INCLUDE (then `include` names the non-key attributes).
    projection: str
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableShape:
    logical: str
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    def key_of(self, item: Item) -> dict[str, Any]:
        return {k: item[k] for k in self.keys}


def shapes(stage: str) -> dict[str, TableShape]:
    """The stage's tables by physical name, from `infra.resources.tables` (their one definition)."""
    found = {}
    for logical, resource in tables(stage).items():
        props = resource["Properties"]
        indexes = tuple(
            Index(
                gsi["IndexName"],
                tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                gsi["Projection"]["ProjectionType"],
                tuple(gsi["Projection"].get("NonKeyAttributes", ())),
            )
            for gsi in props.get("GlobalSecondaryIndexes", [])
        )
        keys = tuple(k["AttributeName"] for k in props["KeySchema"])
        found[props["TableName"]] = TableShape(logical, props["TableName"], keys, indexes)
    return found


def projected(
    item: Item | None, table_keys: tuple[str, ...], index: Index
) -> dict[str, Any] | None:
    """The item as `index` holds it, or None when it is not in the index (sparse: it lacks
    one of the index's key attributes)."""
    if not item or any(k not in item for k in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    kept = {*table_keys, *index.keys, *(index.include if index.projection == "INCLUDE" else ())}
    return {k: v for k, v in item.items() if k in kept}


def index_write_units(old: Item | None, new: Item | None, index_keys: tuple[str, ...]) -> int:
    """WCU one table write costs in one index, given the item's projections there
    before and after (None: not in the index)."""
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(item_size(new))  # enters the index: a put
    if new is None:
        return write_units(item_size(old))  # leaves it: a delete
    if any(old[k] != new[k] for k in index_keys):
        # The index is keyed by it: the old entry is deleted, the new one put.
        return write_units(item_size(old)) + write_units(item_size(new))
    if old == new:
        return 0  # nothing the index holds changed
    return write_units(item_size(new))  # projected attributes rewritten in place


@dataclass(frozen=True)
class WriteCost:
    table: int
    #: WCU by index name; indexes the write does not touch are absent.
    indexes: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.table + sum(self.indexes.values())


def write_cost(
    before: Item | None, after: Item | None, shape: TableShape, *, transactional: bool = False
) -> WriteCost:
    """WCU of one item write, on the table and in each of its indexes, from the item
    before and after it (None: absent). A transaction doubles everything."""
    factor = 2 if transactional else 1
    indexes = {}
    for index in shape.indexes:
        units = index_write_units(
            projected(before, shape.keys, index), projected(after, shape.keys, index), index.keys
        )
        if units:
            indexes[index.name] = units * factor
    table_units = write_units(max(item_size(before), item_size(after)))
    return WriteCost(table_units * factor, indexes)


# ---------------------------------------------------------------- recording real requests
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READS = ("GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan")


@dataclass
class Units:
    """Units of some requests, summed."""

    calls: int = 0
    #: Calls DynamoDB refused (a condition not met): charged all the same.
    failed: int = 0
    table_wcu: float = 0.0
    index_wcu: Counter[str] = field(default_factory=Counter)  # "table.index" -> WCU
    rcu: float = 0.0

    @property
    def wcu(self) -> float:
        return self.table_wcu + sum(self.index_wcu.values())

    def add(self, other: Units) -> None:
        self.calls += other.calls
        self.failed += other.failed
        self.table_wcu += other.table_wcu
        self.index_wcu.update(other.index_wcu)
        self.rcu += other.rcu


#: (operation, logical table, code path) -> Units
Breakdown = dict[tuple[str, str, str], Units]


def total(breakdown: Breakdown) -> Units:
    out = Units()
    for units in breakdown.values():
        out.add(units)
    return out


@dataclass(frozen=True)
class _Target:
    """One item a write request touches."""

    table: str
    key: dict[str, Any]
    transactional: bool


class UnitRecorder:
    """Computes the units of every DynamoDB request of the clients it is attached to.

    Writes are serialised (a lock from `before-call` to `after-call`), so the item
    read before and after a write shows that write alone, even with the executor's
    lanes writing from threads of their own. Counting, not timing: the lock only
    changes how long a run takes."""

    _ID = "bench-write-units"
    _WRITE = "bench-write-units-write"
    _READ = "bench-write-units-read"

    def __init__(self, endpoint: str, stage: str) -> None:
        self.shapes = shapes(stage)
        # Made before `install`, and never attached: its reads are not the code's.
        self._peek: Any = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._breakdown: Breakdown = {}
        #: Stored log bytes seen in jobs after writes, to check the action's log size.
        self.job_log_bytes: Counter[int] = Counter()

    def install(self) -> Callable[[], None]:
        """Attach to every client made from now on; returns the undo."""
        return attach_to_new_clients(self.attach)

    def attach(self, client: Any) -> None:
        if client.meta.service_model.service_name != "dynamodb":
            return
        events = client.meta.events
        # A unique id is unique per client over all events: one for each hook.
        events.register("before-call.dynamodb.*", self._before, unique_id=f"{self._ID}-before")
        events.register("after-call.dynamodb.*", self._after, unique_id=f"{self._ID}-after")
        events.register("after-call-error.dynamodb.*", self._error, unique_id=f"{self._ID}-error")

    def take(self) -> Breakdown:
        with self._lock:
            taken, self._breakdown = self._breakdown, {}
        return taken

    @contextmanager
    def measuring(self) -> Iterator[Breakdown]:
        """`with recorder.measuring() as units:` — the units of the requests made inside."""
        self.take()
        got: Breakdown = {}
        try:
            yield got
        finally:
            got.update(self.take())

    # -- hooks (botocore passes `context`, one dict per call, from before- to after-call)
    def _before(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        operation = str(model.name)
        if operation in READS:
            context[self._READ] = json.loads(params["body"])
        if operation not in WRITES:
            return
        targets = self._targets(operation, json.loads(params["body"]))
        if not self._write_lock.acquire(timeout=60):
            raise RuntimeError("a DynamoDB write waited 60 s for the one before it")
        try:
            befores = [self._get(t.table, t.key) for t in targets]
        except BaseException:
            self._write_lock.release()
            raise
        context[self._WRITE] = (targets, befores, code_path())

    def _error(self, context: dict[str, Any], **_: Any) -> None:
        # The request never reached moto (connection error): nothing to charge.
        context.pop(self._READ, None)
        if context.pop(self._WRITE, None) is not None:
            self._write_lock.release()

    def _after(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = str(model.name)
        failed = 1 if getattr(http_response, "status_code", 200) >= 300 else 0
        held = context.pop(self._WRITE, None)
        if held is not None:
            targets, befores, path = held
            try:
                afters = [self._get(t.table, t.key) for t in targets]
            finally:
                self._write_lock.release()
            self._record_writes(operation, path, targets, befores, afters, failed)
        request = context.pop(self._READ, None)
        if request is not None:
            units = Units(calls=1, failed=failed, rcu=self._rcu(operation, request))
            self._add((operation, self._logical(request), code_path()), units)

    # -- writes
    def _targets(self, operation: str, request: dict[str, Any]) -> list[_Target]:
        if operation in ("UpdateItem", "DeleteItem"):
            return [_Target(request["TableName"], request["Key"], False)]
        if operation == "PutItem":
            shape = self.shapes[request["TableName"]]
            return [_Target(shape.name, shape.key_of(request["Item"]), False)]
        if operation == "BatchWriteItem":
            found = []
            for name, entries in request["RequestItems"].items():
                for entry in entries:
                    if "PutRequest" in entry:
                        key = self.shapes[name].key_of(entry["PutRequest"]["Item"])
                    else:
                        key = entry["DeleteRequest"]["Key"]
                    found.append(_Target(name, key, False))
            return found
        found = []
        for entry in request["TransactItems"]:  # TransactWriteItems
            ((kind, body),) = entry.items()
            name = body["TableName"]
            key = self.shapes[name].key_of(body["Item"]) if kind == "Put" else body["Key"]
            found.append(_Target(name, key, True))
        return found

    def _record_writes(
        self,
        operation: str,
        path: str,
        targets: list[_Target],
        befores: list[Item | None],
        afters: list[Item | None],
        failed: int,
    ) -> None:
        for n, (target, before, after) in enumerate(zip(targets, befores, afters, strict=True)):
            shape = self.shapes[target.table]
            cost = write_cost(before, after, shape, transactional=target.transactional)
            units = Units(
                calls=1 if n == 0 else 0,
                failed=failed if n == 0 else 0,
                table_wcu=cost.table,
                index_wcu=Counter({f"{shape.logical}.{i}": u for i, u in cost.indexes.items()}),
            )
            self._add((operation, shape.logical, path), units)
            if shape.logical == "jobs" and after and "log" in after:
                with self._lock:
                    self.job_log_bytes[len(str(after["log"].get("S", "")).encode())] += 1

    # -- reads
    def _logical(self, request: dict[str, Any]) -> str:
        if "TableName" in request:
            return self.shapes[request["TableName"]].logical
        names = list(request.get("RequestItems", {})) or [
            next(iter(e.values()))["TableName"] for e in request.get("TransactItems", [])
        ]
        return "+".join(sorted({self.shapes[n].logical for n in names}))

    def _rcu(self, operation: str, request: dict[str, Any]) -> float:
        if operation == "GetItem":
            item = self._get(request["TableName"], request["Key"])
            return read_units(item_size(item), consistent=bool(request.get("ConsistentRead")))
        if operation == "BatchGetItem":
            return sum(
                read_units(
                    item_size(self._get(name, key)), consistent=bool(spec.get("ConsistentRead"))
                )
                for name, spec in request["RequestItems"].items()
                for key in spec["Keys"]
            )
        if operation == "TransactGetItems":
            return sum(
                2
                * read_units(
                    item_size(self._get(g["Get"]["TableName"], g["Get"]["Key"])), consistent=True
                )
                for g in request["TransactItems"]
            )
        # Query / Scan: charged on every item read before any filter, as the index holds it.
        shape = self.shapes[request["TableName"]]
        index = next((i for i in shape.indexes if i.name == request.get("IndexName")), None)
        size = 0
        for item in self._replay(operation, request):
            full = self._get(shape.name, shape.key_of(item))
            size += item_size(projected(full, shape.keys, index) if index else full)
        return read_units(size, consistent=bool(request.get("ConsistentRead")))

    def _replay(self, operation: str, request: dict[str, Any]) -> list[Item]:
        """The items the request read: the same page asked again without its filter,
        projection or Select, so every item it examined comes back whole."""
        replay = {
            k: v
            for k, v in request.items()
            if k
            not in (
                "FilterExpression",
                "ProjectionExpression",
                "Select",
                "AttributesToGet",
                "ReturnConsumedCapacity",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
            )
        }
        used = " ".join(str(request.get(k, "")) for k in ("KeyConditionExpression",))
        placeholders = set(re.findall(r"[#:][A-Za-z0-9_]+", used))
        names = {
            k: v
            for k, v in request.get("ExpressionAttributeNames", {}).items()
            if k in placeholders
        }
        values = {
            k: v
            for k, v in request.get("ExpressionAttributeValues", {}).items()
            if k in placeholders
        }
        if names:
            replay["ExpressionAttributeNames"] = names
        if values:
            replay["ExpressionAttributeValues"] = values
        call = self._peek.query if operation == "Query" else self._peek.scan
        items: list[Item] = call(**replay).get("Items", [])
        return items

    # -- helpers
    def _get(self, table_name: str, key: dict[str, Any]) -> Item | None:
        item: Item | None = self._peek.get_item(
            TableName=table_name, Key=key, ConsistentRead=True
        ).get("Item")
        return item

    def _add(self, key: tuple[str, str, str], units: Units) -> None:
        with self._lock:
            self._breakdown.setdefault(key, Units()).add(units)


# ---------------------------------------------------------------- the runs
class LogArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bytes: int = Field(ge=0, le=MAX_LOG_BYTES, description="Log bytes to write.")


def write_log(ctx: ActionContext, args: LogArgs) -> Any:
    """One log line that makes the run's log `bytes` long: the capture prefixes each
    line with a timestamp and the level and ends it with a newline, so the filler is
    what is left (the stored size is checked from the jobs written)."""
    prefix = f"{ctx.clock.now().isoformat(timespec='milliseconds')} INFO "
    ctx.log.info("x" * max(0, args.bytes - len(prefix) - 1))
    return {"logged": args.bytes}


#: Bench-only: a run whose log has a chosen size (the built-in `echo` logs one short line).
LOG_ACTION = Action("bench_log", LogArgs, write_log, "Writes `bytes` bytes of log.")

PRINCIPAL = Principal("tok_bench", "bench", Role.MEMBER, "bench")
CREATED_AT = datetime(2027, 1, 4, 9, 0, 30, tzinfo=UTC)
FIRST_FIRE = datetime(2027, 1, 4, 9, 1, 0, tzinfo=UTC)


@dataclass
class Measured:
    log_bytes: int
    runs: int
    tick: Breakdown
    executor: Breakdown
    queue_jobs: int
    submit: Breakdown
    queue_executor: Breakdown
    stored_log_bytes: Counter[int]
    #: A tick with nothing due (after the queue jobs), over every shard.
    idle: Breakdown = field(default_factory=dict)
    due_shards: int = Settings.due_shards


def execute(services: Services, bodies: list[str], batch_size: int) -> None:
    """Hand the messages to the executor as the `execute_jobs` handler does."""
    for start in range(0, len(bodies), batch_size):
        with services.metrics.batched():
            services.executor.handle_batch(bodies[start : start + batch_size])


def measure(
    *,
    tasks: int,
    log_bytes: int,
    queue_jobs: int,
    batch_size: int,
    due_shards: int | None = None,
) -> Measured:
    """Two minutes of `tasks` cron runs, then `queue_jobs` queue jobs, then a tick with
    nothing due, on a fresh moto (a stage of its own per log size, so no other size's
    items are read or sized). `due_shards`: the stage's shard count (default: Settings')."""
    with moto_stage(f"wu{log_bytes}") as (stage_settings, endpoint):
        settings = replace(stage_settings, due_shards=due_shards) if due_shards else stage_settings
        recorder = UnitRecorder(endpoint, settings.stage)
        uninstall = recorder.install()
        try:
            return _measure(recorder, settings, endpoint, tasks, log_bytes, queue_jobs, batch_size)
        finally:
            uninstall()


def _measure(
    recorder: UnitRecorder,
    settings: Settings,
    endpoint: str,
    tasks: int,
    log_bytes: int,
    queue_jobs: int,
    batch_size: int,
) -> Measured:
    clock = ManualClock(CREATED_AT)
    services = Services.build(
        settings, clock=clock, sleep=clock.advance, actions=Registry([*BUILTIN, LOG_ACTION])
    )
    created = [
        services.tasks.create(
            PRINCIPAL,
            TaskSpec.model_validate(
                {
                    "name": f"log-{i:03d}",
                    "schedule": "* * * * *",
                    "action": LOG_ACTION.name,
                    "args": {"bytes": log_bytes},
                    "log_max_size": max(log_bytes, 1),
                }
            ),
        )
        for i in range(tasks)
    ]
    poller = Poller(endpoint, settings.queue_name("jobs"), CallCounter())
    minutes: list[tuple[Breakdown, Breakdown]] = []
    for minute in range(2):  # the first is cold; the second is the one reported
        clock.set(FIRST_FIRE + timedelta(minutes=minute))
        with recorder.measuring() as tick:
            report = services.tick.run()
        if report.jobs_created != tasks or report.errors:
            raise RuntimeError(f"tick: {report}")
        bodies = poller.take(tasks)
        recorder.job_log_bytes.clear()
        with recorder.measuring() as executor:
            execute(services, bodies, batch_size)
        minutes.append((tick, executor))
    tick, executor = minutes[-1]
    stored = Counter(recorder.job_log_bytes)
    for task in created:
        runs = services.runs.runs(PRINCIPAL, task.id, limit=5, cursor=None).items
        if {j.status for j in runs} != {JobStatus.COMPLETE}:
            raise RuntimeError(f"runs of {task.name} ended {[j.status for j in runs]}")

    # Queue jobs after the cron minutes, when no task is due (the next firing is a minute on).
    clock.set(FIRST_FIRE + timedelta(minutes=1, seconds=5))
    with recorder.measuring() as submit:
        jobs = [
            services.queue.submit(
                PRINCIPAL, JobSubmission(action=LOG_ACTION.name, args={"bytes": log_bytes})
            )
            for _ in range(queue_jobs)
        ]
    bodies = poller.take(queue_jobs) if queue_jobs else []
    with recorder.measuring() as queue_executor:
        execute(services, bodies, batch_size)
    for job in jobs:
        if services.queue.get(PRINCIPAL, job.id).status != JobStatus.COMPLETE:
            raise RuntimeError(f"queue job {job.id} did not complete")

    clock.set(FIRST_FIRE + timedelta(minutes=1, seconds=30))  # nothing due
    with recorder.measuring() as idle:
        services.tick.run()
    return Measured(
        log_bytes,
        tasks,
        tick,
        executor,
        queue_jobs,
        submit,
        queue_executor,
        stored,
        idle,
        settings.due_shards,
    )


# ---------------------------------------------------------------- the report
def summary_row(label: str, units: Units, n: int) -> list[object]:
    """Per run (or job): table WCU, index WCU, total, floor, total / floor, RCU."""
    floor = units.table_wcu / n
    wcu = units.wcu / n
    return [
        label,
        floor,
        sum(units.index_wcu.values()) / n,
        wcu,
        floor,
        wcu / floor if floor else float("nan"),
        units.rcu / n,
    ]


SUMMARY_HEADERS = ["", "table WCU", "index WCU", "total WCU", "floor", "total/floor", "RCU"]


def report(measured: Measured) -> None:
    k, m = measured.runs, measured.queue_jobs
    cron = total(measured.tick)
    cron.add(total(measured.executor))
    rows = [summary_row("cron run (tick + executor)", cron, k)]
    queue = total(measured.submit)
    queue.add(total(measured.queue_executor))
    if m:
        rows.append(summary_row("queue job (submit + executor)", queue, m))
    stored = ", ".join(f"{b} B x{n}" for b, n in sorted(measured.stored_log_bytes.items()))
    print(f"== log {measured.log_bytes} B ({k} cron runs in the steady minute, {m} queue jobs)")
    print(f"log stored on the jobs' last writes of the steady minute: {stored or 'none'}")
    print(table(SUMMARY_HEADERS, rows))
    print()
    print("Index WCU by index (per cron run / per queue job):")
    names = sorted(
        set(cron.index_wcu) | set(queue.index_wcu), key=lambda i: (-cron.index_wcu[i], i)
    )
    print(
        table(
            ["index", "cron run", "queue job"],
            [[i, cron.index_wcu[i] / k, queue.index_wcu[i] / m if m else 0.0] for i in names],
        )
    )
    print()
    print("By request and code path (per cron run / per queue job):")
    phases = [("tick", measured.tick, k), ("executor", measured.executor, k)]
    if m:
        phases += [("submit", measured.submit, m), ("queue exec", measured.queue_executor, m)]
    print(
        table(
            [
                "phase",
                "operation",
                "table",
                "code path (innermost first)",
                "calls",
                "failed",
                "table WCU",
                "index WCU",
                "RCU",
            ],
            [
                [
                    phase,
                    op,
                    logical,
                    path,
                    u.calls / n,
                    u.failed / n,
                    u.table_wcu / n,
                    sum(u.index_wcu.values()) / n,
                    u.rcu / n,
                ]
                for phase, breakdown, n in phases
                for (op, logical, path), u in sorted(breakdown.items())
            ],
        )
    )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="every-minute tasks (20)")
    parser.add_argument(
        "--log-bytes",
        type=int,
        action="append",
        help="log bytes per run, repeatable (default: 1024 and 10240)",
    )
    parser.add_argument(
        "--queue-jobs", type=int, default=10, help="queue jobs per log size (10; 0: none)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=10, help="messages per executor invocation (10)"
    )
    args = parser.parse_args(argv)
    sizes: list[int] = args.log_bytes or [1024, 10240]

    fake_aws_credentials()
    quiet_logs()
    measured = [
        measure(
            tasks=args.tasks,
            log_bytes=size,
            queue_jobs=args.queue_jobs,
            batch_size=args.batch_size,
        )
        for size in sizes
    ]
    for one in measured:
        report(one)
    print("Summary, per cron run (steady minute):")
    rows = []
    for one in measured:
        cron = total(one.tick)
        cron.add(total(one.executor))
        rows.append(summary_row(f"log {one.log_bytes} B", cron, one.runs))
    print(table(SUMMARY_HEADERS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
