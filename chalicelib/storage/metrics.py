"""Metric storage: per-minute counters of ended jobs, one item per (minute, action).

Keys: `pk` is the hour, `h#2027-01-04T09`; `sk` is the minute and the action,
`2027-01-04T09:05#echo`. So a window of N hours is N+1 Queries (never a Scan),
each reading only the minutes it needs (a range on `sk`).

Counters are top-level number attributes, written with DynamoDB `ADD` (atomic;
`ADD` creates a missing attribute at 0, whereas an `ADD` into a nested map
fails while the map does not exist):

- `n_<outcome>`: jobs that ended with that status (`n_complete`, ...);
- `r<bucket>`: run-time histogram, `w<bucket>`: queue-wait histogram, with
  the buckets of `chalicelib.metrics.model` (`r0` .. `r81`);
- `expires_at_s`: TTL, KEEP after the minute.

They are not declared on `MetricRecord` (their names are data), so this module
uses the bound model's table connection and reads raw items.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.expressions.operand import Path

from chalicelib.metrics.model import MetricRow, Sample, bucket_of, minute_of
from chalicelib.storage.binding import Tables

#: How long counters are kept (DynamoDB TTL): a week of windows and a day to spare.
KEEP = timedelta(days=8)
#: Hour partitions read at once.
READ_WORKERS = 8

_MINUTE = "%Y-%m-%dT%H:%M"
_COUNT = "n_"
_RUN_TIME = "r"
_QUEUE_WAIT = "w"


def hour_key(instant: datetime) -> str:
    """`pk` of the hour holding `instant`: `h#2027-01-04T09`."""
    return "h#" + instant.astimezone(UTC).strftime("%Y-%m-%dT%H")


def sort_key(minute: datetime, action: str) -> str:
    """`sk` of an action's counters in a minute: `2027-01-04T09:05#echo`."""
    return f"{minute.astimezone(UTC).strftime(_MINUTE)}#{action}"


def _hours(since: datetime, until: datetime) -> list[datetime]:
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour <= until:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _row(item: dict[str, Any]) -> MetricRow:
    minute_text, _, action = item["sk"]["S"].partition("#")
    counts: dict[str, int] = {}
    run_time: dict[int, int] = {}
    queue_wait: dict[int, int] = {}
    for name, value in item.items():
        if "N" not in value:
            continue
        n = int(value["N"])
        if name.startswith(_COUNT):
            counts[name[len(_COUNT) :]] = n
        elif name[0] in (_RUN_TIME, _QUEUE_WAIT) and name[1:].isdigit():
            (run_time if name[0] == _RUN_TIME else queue_wait)[int(name[1:])] = n
    return MetricRow(
        minute=datetime.strptime(minute_text, _MINUTE).replace(tzinfo=UTC),
        action=action,
        counts=counts,
        run_time=run_time,
        queue_wait=queue_wait,
    )


class MetricStore:
    """A stage's metrics table."""

    def __init__(self, tables: Tables) -> None:
        self._metrics = tables.metrics

    def add(self, samples: list[Sample]) -> None:
        """Count ended jobs: one UpdateItem of atomic ADDs per minute and action
        among them, so concurrent executors never lose each other's counts and
        a batch of runs of one action is one write."""
        counters: dict[tuple[datetime, str], Counter[str]] = defaultdict(Counter)
        for sample in samples:
            counts = counters[(minute_of(sample.at), sample.action)]
            counts[_COUNT + sample.outcome.value] += 1
            if sample.run_time_ms is not None:
                counts[f"{_RUN_TIME}{bucket_of(sample.run_time_ms)}"] += 1
            if sample.queue_wait_ms is not None:
                counts[f"{_QUEUE_WAIT}{bucket_of(sample.queue_wait_ms)}"] += 1
        connection = self._metrics._get_connection()
        for (minute, action), counts in counters.items():
            actions: list[Any] = [Path(name).add(n) for name, n in sorted(counts.items())]
            actions.append(self._metrics.expires_at_s.set(minute + KEEP))
            connection.update_item(
                hour_key(minute), sort_key(minute, action), actions=actions, return_values="NONE"
            )

    def rows(self, since: datetime, until: datetime) -> list[MetricRow]:
        """Every action's counters for the minutes from `since` to `until`
        (both included, to the minute): one Query per hour, read in parallel."""
        low = minute_of(since).astimezone(UTC).strftime(_MINUTE)
        # "$" sorts right after "#": the last minute's items, whatever their action.
        high = minute_of(until).astimezone(UTC).strftime(_MINUTE) + "$"
        hours = _hours(since, until)

        def read(hour: datetime) -> list[MetricRow]:
            return self._query(hour_key(hour), low, high)

        with ThreadPoolExecutor(
            max_workers=min(READ_WORKERS, len(hours)), thread_name_prefix="metrics"
        ) as pool:
            return [row for rows in pool.map(read, hours) for row in rows]

    def _query(self, pk: str, low: str, high: str) -> list[MetricRow]:
        connection = self._metrics._get_connection()
        rows: list[MetricRow] = []
        start: Any = None
        while True:  # pages of 1 MB: an hour of many actions may need two
            page = connection.query(
                pk,
                range_key_condition=self._metrics.sk.between(low, high),
                exclusive_start_key=start,
            )
            rows += [_row(item) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return rows
