"""PynamoDB models of Tickwork's tables.

The physical definitions (keys, attribute types, indexes, TTL) live in
`infra/resources.py`; `tests/unit/infra/test_tables_match_infra.py` checks these
models against it. These classes name no table: `binding.bind_tables(settings)`
makes a stage's subclasses of them, which do.
"""

from __future__ import annotations

import zlib

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model


def shard_of(key: str, shards: int) -> int:
    """Which of `shards` partitions of a sharded index an item's key falls in:
    a hash that is the same in every process and every Python (not `hash()`)."""
    return zlib.crc32(key.encode()) % shards


#: PynamoDB's retries of one call. Lambda retries on its own; keep each call
#: short so one slow request does not eat a handler's deadline.
MAX_RETRY_ATTEMPTS = 3


class _Meta:
    # No table: a model used without binding fails at once (PynamoDB refuses a
    # model without a table name) instead of reaching some default table.
    table_name: str = None  # type: ignore[assignment]
    region = "us-east-1"
    host: str | None = None
    billing_mode = "PAY_PER_REQUEST"
    max_retry_attempts = MAX_RETRY_ATTEMPTS


# ---------------------------------------------------------------- tasks
class TasksByProject(GlobalSecondaryIndex["TaskRecord"]):
    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)


class TasksDue(GlobalSecondaryIndex["TaskRecord"]):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    next_run_ms = NumberAttribute(range_key=True)


class TaskRecord(Model):
    """A scheduled task. `spec` holds the user's definition (validated JSON);
    the top-level attributes are what indexes, filters and the tick need."""

    class Meta(_Meta):
        logical_name = "tasks"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute()
    spec: JSONAttribute = JSONAttribute()
    enabled = BooleanAttribute()
    action = UnicodeAttribute()
    group = UnicodeAttribute()
    # Present only while the task will fire: makes the `due` index sparse.
    due_shard = UnicodeAttribute(null=True)
    next_run_ms = NumberAttribute(null=True)
    # Start of `@every` intervals: creation or the last schedule change.
    anchor_ms = NumberAttribute()
    last_run_ms = NumberAttribute(null=True)
    last_status = UnicodeAttribute(null=True)
    # The job of the last finished run: a firing whose previous firing it is
    # knows, without reading that job, that it is not waiting to start.
    last_run_id = UnicodeAttribute(null=True)
    paused_reason = UnicodeAttribute(null=True)
    consecutive_failures = NumberAttribute(default=0)
    # Finished runs the executor recorded and pruning has not deleted (`keep_runs`).
    finished_runs = NumberAttribute(default=0)
    # Ids of the jobs holding one of the task's `parallelism` slots. A set, so
    # taking or giving back a slot twice is harmless (duplicate deliveries).
    active_runs = UnicodeSetAttribute(null=True)
    # `on_overlap: buffer_one`: the one firing allowed to wait for a slot.
    waiting_job = UnicodeAttribute(null=True)
    # `on_overlap: queue`: firings waiting for a slot, as `<fire ms, 15 digits>|<job id>`,
    # so they take free slots oldest first instead of racing newer firings.
    queued_jobs = UnicodeSetAttribute(null=True)
    created_ms = NumberAttribute()
    updated_ms = NumberAttribute()
    version = NumberAttribute()
    # The token that created the task or last changed it (PATCH): `<name> (<token
    # id>)` and the token id. Its runs' approval requests name it (four eyes).
    changed_by = UnicodeAttribute(null=True)
    changed_by_token = UnicodeAttribute(null=True)

    by_project = TasksByProject()
    due = TasksDue()


# ---------------------------------------------------------------- jobs
class JobsByTask(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_task"
        projection = AllProjection()

    task_id = UnicodeAttribute(hash_key=True)
    scheduled_ms = NumberAttribute(range_key=True)


class JobsByProject(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    created_ms = NumberAttribute(range_key=True)


class JobsByProjectStatus(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_project_status"
        projection = AllProjection()

    project_status = UnicodeAttribute(hash_key=True)
    created_ms = NumberAttribute(range_key=True)


class JobsByCorrelation(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_correlation"
        projection = AllProjection()

    project_correlation = UnicodeAttribute(hash_key=True)
    created_ms = NumberAttribute(range_key=True)


class JobsDue(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_ms = NumberAttribute(range_key=True)


class JobsDeadLetters(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "dead_letters"
        projection = AllProjection()

    dead_letter_key = UnicodeAttribute(hash_key=True)
    dead_lettered_ms = NumberAttribute(range_key=True)


#: What the stage-wide listing indexes copy besides their keys: a job's summary
#: (`chalicelib.storage.job_listing.JobSummary`) and what their filters read. Not
#: `args` and `log`: a write that changes only those leaves these indexes alone.
LISTING_ATTRIBUTES = ["project_id", "action", "status", "resource_id", "result", "error"]


class JobsByStatus(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_status"
        projection = IncludeProjection(LISTING_ATTRIBUTES)

    status_shard = UnicodeAttribute(hash_key=True)
    timestamp_ms = NumberAttribute(range_key=True)


class JobsByAction(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_action"
        projection = IncludeProjection(LISTING_ATTRIBUTES)

    action_shard = UnicodeAttribute(hash_key=True)
    timestamp_ms = NumberAttribute(range_key=True)


class JobsByResource(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_resource"
        projection = IncludeProjection(LISTING_ATTRIBUTES)

    resource_id = UnicodeAttribute(hash_key=True)
    timestamp_ms = NumberAttribute(range_key=True)


class JobRecord(Model):
    """One execution (DESIGN §5). Written by the engine and the queue API."""

    class Meta(_Meta):
        logical_name = "jobs"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    task_id = UnicodeAttribute(null=True)
    action = UnicodeAttribute()
    args: JSONAttribute = JSONAttribute(default=dict)
    status = UnicodeAttribute()
    # `<project_id>#<status>`: one partition per project and status, for
    # filtered listings and depth counts without reading other statuses.
    project_status = UnicodeAttribute()
    project_correlation = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    resource_id = UnicodeAttribute(null=True)
    # Fire time while `scheduled`, else when the status last changed (DESIGN §7
    # job fields). Absent on rows written before it was stored: those stay out
    # of the three indexes below until their next change of status.
    timestamp_ms = NumberAttribute(null=True)
    # `<status>#<shard>` and `<action>#<shard>` (shard: `listing_shard(id)`):
    # stage-wide `by_status` and `by_action`, each value spread over a few
    # partitions so that one busy status or action is not one hot partition.
    status_shard = UnicodeAttribute(null=True)
    action_shard = UnicodeAttribute(null=True)
    trigger = UnicodeAttribute()
    attempt = NumberAttribute(default=0)
    max_attempts = NumberAttribute(default=1)
    # A service run: consecutive failed runs of its lineage before it (backoff's k).
    restarts = NumberAttribute(default=0)
    created_ms = NumberAttribute()
    scheduled_ms = NumberAttribute()
    enqueued_ms = NumberAttribute(null=True)
    started_ms = NumberAttribute(null=True)
    finished_ms = NumberAttribute(null=True)
    lease_until_ms = NumberAttribute(null=True)
    # Present while the job is not terminal: the next instant at which the tick
    # must act on it if nothing else does (send it, re-send a lost message, or
    # restart it after its lease ran out). Terminal jobs leave the index.
    due_shard = UnicodeAttribute(null=True)
    due_ms = NumberAttribute(null=True)
    timeout_s = NumberAttribute(default=300)
    retry_backoff = UnicodeAttribute(default="constant")
    retry_delay_s = NumberAttribute(default=60)
    keep_for_s = NumberAttribute(default=2_592_000)
    log_max_size = NumberAttribute(default=65_536)
    log_on_full = UnicodeAttribute(default="drop_new")
    result: JSONAttribute = JSONAttribute(null=True)
    result_truncated = BooleanAttribute(default=False)
    # The last attempt's log, on rows written before each attempt's log went to
    # the attempts table (read only: `AttemptRecord` holds every log now).
    log = UnicodeAttribute(null=True)
    log_truncated = BooleanAttribute(default=False)
    error = UnicodeAttribute(null=True)
    cancel_requested = BooleanAttribute(default=False)
    requires_approval = BooleanAttribute(default=False)
    approval_request_id = UnicodeAttribute(null=True)
    success_num = NumberAttribute(default=0)
    failed_num = NumberAttribute(default=0)
    skip_num = NumberAttribute(default=0)
    # A queue job's `expires` deadline: not started by then, it ends `expired`.
    start_by_ms = NumberAttribute(null=True)
    retry_of = UnicodeAttribute(null=True)
    # Who asked for the run: `<name> (<token id>)` and the token id (HITL's
    # `requested_by` and four-eyes rule). Absent on rows older than them.
    requested_by = UnicodeAttribute(null=True)
    requested_by_token = UnicodeAttribute(null=True)
    # Present while the job's message sits among the dead letters (sparse
    # `dead_letters` index; one stage-wide partition: dead letters are rare).
    dead_letter_key = UnicodeAttribute(null=True)
    dead_lettered_ms = NumberAttribute(null=True)
    dead_letter_receives = NumberAttribute(null=True)
    expires_at_s = TTLAttribute(null=True)

    by_task = JobsByTask()
    by_project = JobsByProject()
    by_project_status = JobsByProjectStatus()
    by_correlation = JobsByCorrelation()
    due = JobsDue()
    dead_letters = JobsDeadLetters()
    by_status = JobsByStatus()
    by_action = JobsByAction()
    by_resource = JobsByResource()


# ---------------------------------------------------------------- attempts
class AttemptRecord(Model):
    """One attempt of a job: when it started and ended, how, and its log. Kept
    apart from the job so that the job's writes, and every index that copies
    the job, never carry a log; it expires with its job (the same TTL)."""

    class Meta(_Meta):
        logical_name = "attempts"

    job_id = UnicodeAttribute(hash_key=True)
    attempt = NumberAttribute(range_key=True)
    # `complete`, `failed`, `cancelled`, or `lost` (its executor stopped).
    status = UnicodeAttribute()
    started_ms = NumberAttribute(null=True)
    finished_ms = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    log = UnicodeAttribute(null=True)
    log_truncated = BooleanAttribute(default=False)
    expires_at_s = TTLAttribute(null=True)


# ---------------------------------------------------------------- approvals
class ApprovalsByProjectStatus(GlobalSecondaryIndex["ApprovalRecord"]):
    class Meta:
        index_name = "by_project_status"
        projection = AllProjection()

    project_status = UnicodeAttribute(hash_key=True)
    requested_ms = NumberAttribute(range_key=True)


class ApprovalsDue(GlobalSecondaryIndex["ApprovalRecord"]):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    expires_ms = NumberAttribute(range_key=True)


class ApprovalRecord(Model):
    """A human-in-the-loop approval request (DESIGN §5)."""

    class Meta(_Meta):
        logical_name = "approvals"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    job_id = UnicodeAttribute()
    action = UnicodeAttribute()
    args: JSONAttribute = JSONAttribute(default=dict)
    status = UnicodeAttribute()
    project_status = UnicodeAttribute()
    requested_ms = NumberAttribute()
    expires_ms = NumberAttribute()
    due_shard = UnicodeAttribute(null=True)
    decided_ms = NumberAttribute(null=True)
    requested_by = UnicodeAttribute(null=True)
    decided_by = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    expires_at_s = TTLAttribute(null=True)

    by_project_status = ApprovalsByProjectStatus()
    due = ApprovalsDue()


# ---------------------------------------------------------------- tokens
class TokensById(GlobalSecondaryIndex["TokenRecord"]):
    class Meta:
        index_name = "by_id"
        projection = AllProjection()

    id = UnicodeAttribute(hash_key=True)


class TokensByKind(GlobalSecondaryIndex["TokenRecord"]):
    class Meta:
        index_name = "by_kind"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    created_ms = NumberAttribute(range_key=True)


class TokenRecord(Model):
    """An API token. Only the SHA-256 of the secret is stored."""

    class Meta(_Meta):
        logical_name = "tokens"

    token_hash = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute()
    # Constant partition of the `by_kind` index: tokens are few, and listing
    # them must not Scan.
    kind = UnicodeAttribute(default="token")
    project_id = UnicodeAttribute()
    role = UnicodeAttribute()
    name = UnicodeAttribute()
    created_ms = NumberAttribute()

    by_id = TokensById()
    by_kind = TokensByKind()


# ---------------------------------------------------------------- metrics
class MetricRecord(Model):
    """Per-minute counters and histograms of ended jobs: `pk` an hour, `sk` a
    minute and an action. The counters are top-level number attributes whose
    names are data (`n_complete`, `r17`, ...); `chalicelib.storage.metrics`
    writes them with atomic ADDs and reads them raw."""

    class Meta(_Meta):
        logical_name = "metrics"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at_s = TTLAttribute(null=True)


# ---------------------------------------------------------------- uniques
class UniqueRecord(Model):
    """A uniqueness claim such as `task-name#<project>#<name>`, owned by one item."""

    class Meta(_Meta):
        logical_name = "uniques"

    key = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()


MODELS: tuple[type[Model], ...] = (
    TaskRecord,
    JobRecord,
    AttemptRecord,
    ApprovalRecord,
    TokenRecord,
    MetricRecord,
    UniqueRecord,
)
