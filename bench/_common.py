"""What the benchmarks share: moto in its own process, counting AWS calls, tasks made
in bulk with the API's own item layout, a local Redis, percentiles."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session

from chalicelib.auth.service import Principal, Role
from chalicelib.settings import Settings
from chalicelib.storage.binding import Tables
from chalicelib.storage.tasks import TaskStore, name_key
from chalicelib.tasks.model import Task, TaskSpec
from chalicelib.tasks.service import TaskService
from infra.local import local_credentials
from infra.stack_process import free_port

if TYPE_CHECKING:
    from chalicelib.wiring import Services

ROOT = Path(__file__).resolve().parents[1]

Op = tuple[str, str]  # (service, operation), e.g. ("dynamodb", "Query")


#: botocore and moto want credentials and a region even when nothing is real:
#: the same as the embedded AWS's.
fake_aws_credentials = local_credentials


def quiet_logs() -> None:
    for name in ("werkzeug", "botocore", "tickwork", "pynamodb"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------- moto
_MOTO_MAIN = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin (or dies)
server.stop()
"""


@contextmanager
def moto_stage(stage: str = "bench") -> Iterator[tuple[Settings, str]]:
    """moto's server in this process with `stage` provisioned: the stage's
    settings and moto's endpoint URL. The lookahead is 0.5 s: a tick emits only
    what is due by the fake clock's now, so messages carry no SQS delay. For
    benchmarks that count calls, not time (`MotoProcess` keeps moto's CPU apart
    when time is measured)."""
    from moto.server import ThreadedMotoServer

    from infra.local import provision

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        provision(endpoint, stage)
        yield Settings(stage=stage, aws_endpoint_url=endpoint, lookahead_s=0.5), endpoint
    finally:
        server.stop()


class MotoProcess:
    """moto's server in a child process, so its CPU is not the benchmark's own
    (GROUND.md: moto's Query cost grows with the table; measure it apart)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def start(self) -> MotoProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOTO_MAIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"moto did not start (said {line!r})")
        self.endpoint_url = f"http://127.0.0.1:{line}"
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the moto process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MotoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- tasks in bulk
#: The token the benchmarks create their tasks with.
PRINCIPAL = Principal("tok_bench", "bench", Role.MEMBER, "bench")
#: Differences a bulk item may have from the witness made by the real store.
PER_TASK_ATTRIBUTES = {"id", "name", "next_run_ms", "due_shard"}


class BulkTaskStore(TaskStore):
    """TaskService.create's store, putting the same items in batches of 25."""

    def __init__(self, settings: Settings, tables: Tables) -> None:
        super().__init__(settings, tables)
        self._task_batch = tables.tasks.batch_write()
        self._claim_batch = tables.uniques.batch_write()

    def create(self, task: Task) -> None:
        self._task_batch.save(self._to_record(task))
        self._claim_batch.save(
            self._uniques(key=name_key(task.project_id, task.name), owner=task.id)
        )

    def flush(self) -> None:
        self._task_batch.commit()
        self._claim_batch.commit()


def raw_item(client: Any, table_name: str, task_id: str) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(
        TableName=table_name, Key={"id": {"S": task_id}}, ConsistentRead=True
    )["Item"]
    return item


def check_bulk_items(settings: Settings, endpoint: str, witness: str, bulk: str) -> None:
    """The bulk item must be what TaskService.create with the real store writes."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=settings.region)
    name = settings.table_name("tasks")
    a, b = raw_item(client, name, witness), raw_item(client, name, bulk)
    a_spec, b_spec = a.pop("spec"), b.pop("spec")
    differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} - PER_TASK_ATTRIBUTES
    if a.keys() != b.keys() or differ or a_spec.keys() != b_spec.keys():
        raise SystemExit(f"bulk task item differs from TaskService.create's: {sorted(differ)}")


def create_tasks_in_bulk(
    services: Services,
    endpoint: str,
    count: int,
    schedule: Callable[[], str],
    *,
    progress: Callable[[int], None] | None = None,
) -> None:
    """`count` tasks (action `echo`, args `{"n": 1}`, each with the next
    `schedule()`), all through `TaskService.create`: the first, `witness`, with
    the real store (one TransactWriteItems), the others, `later-000000`, ...,
    over a BulkTaskStore, which batch-writes the very same two items per task
    (the task and its name claim); the uniqueness conditions are not checked
    (the names are unique by construction). The first bulk item is then
    compared with the witness's, and the script stops if they differ in
    anything but per-task values. `progress(n)` every 20,000 tasks written."""
    settings = services.settings
    later: dict[str, Any] = {"schedule": schedule(), "action": "echo", "args": {"n": 1}}
    witness = services.tasks.create(
        PRINCIPAL, TaskSpec.model_validate({**later, "name": "witness"})
    )
    bulk_store = BulkTaskStore(settings, services.tables)
    bulk = TaskService(
        bulk_store,
        services.clock,
        services.ids,
        services.registry,
        max_args_bytes=settings.max_args_bytes,
    )
    first_bulk = ""
    for i in range(count - 1):
        spec = {**later, "name": f"later-{i:06d}", "schedule": schedule()}
        task = bulk.create(PRINCIPAL, TaskSpec.model_validate(spec))
        first_bulk = first_bulk or task.id
        if progress is not None and (i + 1) % 20_000 == 0:
            progress(i + 2)
    bulk_store.flush()
    if first_bulk:
        check_bulk_items(settings, endpoint, witness.id, first_bulk)


# ---------------------------------------------------------------- Redis
REDIS_INSTALL = "apt-get install -y redis-server"


def redis_server_or_none(system: str) -> str | None:
    """Debian's `redis-server`, or None after saying how to install it."""
    executable = shutil.which("redis-server")
    if executable is None:
        print(
            f"{system}: `redis-server` is not installed; skipping {system}. Install it with "
            f"`{REDIS_INSTALL}` (Debian's package) and run again."
        )
    return executable


def redis_version(executable: str) -> str:
    out = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    return next((w[2:] for w in out.split() if w.startswith("v=")), "?")


class RedisServer:
    """Debian's redis-server on a loopback port, nothing saved to disk."""

    def __init__(self, executable: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- counting calls
def attach_to_new_clients(attach: Callable[[Any], None]) -> Callable[[], None]:
    """Call `attach(client)` on every botocore client created from now on, whatever
    creates it (pynamodb's sessions, chalicelib.jobs.sqs's, boto3's all go through
    `botocore.session.Session.create_client`); returns the undo."""
    original = botocore.session.Session.create_client

    def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        attach(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[assignment,method-assign]

    def uninstall() -> None:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]

    return uninstall


@dataclass
class Tally:
    """AWS API calls seen by a CallCounter, and the DynamoDB items they read."""

    calls: Counter[Op] = field(default_factory=Counter)
    #: Failed calls by (service, operation, error code), e.g. conditional checks.
    errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: Items returned: Query `Count`, GetItem 1 if found, BatchGetItem/TransactGetItems items.
    items_returned: Counter[Op] = field(default_factory=Counter)
    #: Items the service examined: Query `ScannedCount` (before filters), else as returned.
    items_scanned: Counter[Op] = field(default_factory=Counter)
    #: Calls by (service, operation, code path) when the counter attributes them.
    callers: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def total(self, service: str | None = None) -> int:
        return sum(n for (s, _), n in self.calls.items() if service in (None, s))

    def read(self) -> int:
        return sum(self.items_scanned.values())

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.calls + other.calls,
            self.errors + other.errors,
            self.items_returned + other.items_returned,
            self.items_scanned + other.items_scanned,
            self.callers + other.callers,
        )


def _items(operation: str, parsed: dict[str, Any]) -> tuple[int, int]:
    """(returned, scanned) items of one DynamoDB response."""
    if operation in ("Query", "Scan"):
        count = int(parsed.get("Count", 0))
        return count, int(parsed.get("ScannedCount", count))
    if operation == "GetItem":
        found = 1 if parsed.get("Item") else 0
        return found, found
    if operation == "BatchGetItem":
        found = sum(len(items) for items in parsed.get("Responses", {}).values())
        return found, found
    if operation == "TransactGetItems":
        found = sum(1 for r in parsed.get("Responses", []) if r.get("Item"))
        return found, found
    return 0, 0


class CallCounter:
    """Counts every API call of the botocore clients it is attached to, through
    the clients' own `after-call` event (fired once per call, after botocore's
    retries, for failed calls too).

    `install()` attaches it to every client created from then on, whatever
    creates it: pynamodb makes its clients from a botocore session of its own,
    chalicelib.jobs.sqs from another, boto3 from a third; all of them go
    through `botocore.session.Session.create_client`.
    """

    def __init__(self, *, attribute: bool = False) -> None:
        #: Also note which chalicelib functions made each call (walks the stack).
        self.attribute = attribute
        self._lock = threading.Lock()
        self._tally = Tally()
        self._id = f"bench-call-counter-{id(self)}"

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call.*.*", self._after_call, unique_id=self._id)

    def detach(self, client: Any) -> None:
        """Stop counting a client's calls (the benchmark's own helpers)."""
        client.meta.events.unregister("after-call.*.*", unique_id=self._id)

    def install(self) -> Callable[[], None]:
        """Attach to every botocore client created from now on; returns the undo."""
        return attach_to_new_clients(self.attach)

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any
    ) -> None:
        op = (str(model.service_model.service_name), str(model.name))
        returned, scanned = _items(op[1], parsed) if op[0] == "dynamodb" else (0, 0)
        status = getattr(http_response, "status_code", 200)
        caller = code_path() if self.attribute else ""
        with self._lock:
            self._tally.calls[op] += 1
            if caller:
                self._tally.callers[(*op, caller)] += 1
            if returned or scanned:
                self._tally.items_returned[op] += returned
                self._tally.items_scanned[op] += scanned
            if status >= 300:
                code = str(parsed.get("Error", {}).get("Code", status))
                self._tally.errors[(*op, code)] += 1

    def take(self) -> Tally:
        """What was counted since the last take (and start afresh)."""
        with self._lock:
            tally, self._tally = self._tally, Tally()
        return tally

    @contextmanager
    def measuring(self) -> Iterator[Tally]:
        """`with counter.measuring() as tally:` — tally holds the calls made inside."""
        self.take()
        tally = Tally()
        try:
            yield tally
        finally:
            got = self.take()
            tally.calls, tally.errors = got.calls, got.errors
            tally.items_returned, tally.items_scanned = got.items_returned, got.items_scanned
            tally.callers = got.callers


_CHALICELIB = str(ROOT / "chalicelib")


def code_path() -> str:
    """The innermost two chalicelib functions on the stack: `jobs.get < executor.handle`."""
    names: list[str] = []
    frame = sys._getframe(2)
    while frame is not None and len(names) < 2:
        path = frame.f_code.co_filename
        if path.startswith(_CHALICELIB) and not frame.f_code.co_name.startswith("<"):
            names.append(f"{Path(path).stem}.{frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(names) or "?"


# ---------------------------------------------------------------- numbers
def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated linearly between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if n and _numeric(c) else c.ljust(w)
                for c, w in zip(row, widths, strict=True)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).isdigit()


class Stopwatch:
    """Wall and this process's CPU time (all threads) of a block; with `not_ours`
    (a running total of CPU seconds, such as `InProcessMotoCpu.seconds`), the CPU
    that total gained meanwhile is left out."""

    def __init__(self, not_ours: Callable[[], float] | None = None) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        #: The CPU left out (what `not_ours` gained over the block).
        self.not_ours_s = 0.0
        self._not_ours = not_ours

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._other = self._not_ours() if self._not_ours else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu
        if self._not_ours:
            self.not_ours_s = self._not_ours() - self._other
            self.cpu_s -= self.not_ours_s


class InProcessMotoCpu:
    """CPU seconds spent by the request threads of a moto server running in this
    process (`moto_stage`), so a benchmark that times our code in the same process
    can leave moto's share out of `time.process_time()`: each request moto handles
    adds its thread's CPU (`time.thread_time()`) over that request to a total.
    Only what moto does per request is counted (the server's accept loop is not:
    it mostly waits)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0.0

    def install(self) -> Callable[[], None]:
        """Count from now on; returns the undo."""
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        original = MotoRequestHandler.handle_one_request
        meter = self

        def handle_one_request(handler: Any) -> None:
            start = time.thread_time()
            try:
                original(handler)
            finally:
                spent = time.thread_time() - start
                with meter._lock:
                    meter._total += spent

        MotoRequestHandler.handle_one_request = handle_one_request  # type: ignore[assignment,method-assign]

        def uninstall() -> None:
            MotoRequestHandler.handle_one_request = original  # type: ignore[method-assign]

        return uninstall

    def seconds(self) -> float:
        with self._lock:
            return self._total


# ---------------------------------------------------------------- processes and machine
def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of any process so far (Linux /proc), like MotoProcess.cpu_seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_group_cpu_seconds(pgid: int) -> float:
    """User + system CPU so far of every process in a process group, with the
    children they reaped (the local stack: its own process, the embedded AWS,
    the journal's compactions)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == pgid:
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_facts() -> str:
    """One line: cores, Python, load average, for the head of a benchmark's report."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]} ({sys.implementation.name}); "
        f"load average {load}"
    )
