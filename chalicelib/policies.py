"""Pure policy maths of DESIGN §4: catch-up, backoff. No I/O, no clock reads."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.schedules import fire_times, parse_schedule, parse_timezone
from chalicelib.task_model import Backoff, CatchUp, Kind, Task

#: A firing more than this late counts as missed (DESIGN §4 catch_up).
MISSED_AFTER = timedelta(seconds=60)
#: At most this many missed firings are looked for (DESIGN §4 catch_up_window).
MAX_CATCH_UP = 1000
#: Retry and restart delays are capped at one day.
MAX_BACKOFF_S = 86_400.0


def backoff_delay_s(backoff: Backoff, delay_s: float, k: int) -> float:
    """Delay before retry (or restart) number k = 1, 2, …: d, d·k or d·2^(k-1), at most 1 day."""
    if k < 1:
        raise ValueError("k counts from 1")
    if backoff is Backoff.CONSTANT:
        delay = delay_s
    elif backoff is Backoff.LINEAR:
        delay = delay_s * k
    else:
        # Cap the exponent first: 2**k overflows floats long before k matters.
        delay = delay_s * 2 ** min(k - 1, 64)
    return min(delay, MAX_BACKOFF_S)


@dataclass(frozen=True)
class Firing:
    at: datetime
    missed: bool


@dataclass(frozen=True)
class FiringPlan:
    """What the tick does for one due task."""

    firings: list[Firing]
    #: The task's next fire time after these firings (None: it will not fire again).
    next_run_at: datetime | None


def plan_firings(task: Task, *, now: datetime, horizon: datetime) -> FiringPlan:
    """The firings of `task` from its `next_run_at` up to `horizon` (now + lookahead).

    Firings more than MISSED_AFTER late are missed ones, treated per `catch_up`:
    `latest` keeps the newest of them, `all` keeps every one within
    `catch_up_window` (the newest MAX_CATCH_UP, oldest first), `skip` keeps
    none. Firings within MISSED_AFTER of now, or ahead of it, are always kept.
    """
    start = task.next_run_at
    if start is not None and task.kind is Kind.SERVICE:
        # A service's one firing is its start, however late: it is meant to run.
        if start > horizon:
            return FiringPlan([], start)
        return FiringPlan([Firing(start, missed=False)], None)
    if start is None or task.schedule is None:
        return FiringPlan([], None)
    schedule = parse_schedule(task.schedule)
    zone = parse_timezone(task.timezone)
    missed_before = now - MISSED_AFTER
    # Missed firings older than the window are dropped whatever the policy, and
    # `skip` drops them all: start the walk where kept firings can begin.
    earliest = now - timedelta(seconds=task.catch_up_window)
    if task.catch_up is CatchUp.SKIP:
        earliest = missed_before
    walk_from = max(start, earliest) - timedelta(microseconds=1)

    missed: deque[datetime] = deque(maxlen=MAX_CATCH_UP)
    on_time: list[datetime] = []
    for at in fire_times(schedule, zone, walk_from, anchor=task.anchor_at):
        if at > horizon:
            following: datetime | None = at
            break
        (on_time if at >= missed_before else missed).append(at)
    else:  # a one-shot ran out of firings
        following = None
    kept = [] if task.catch_up is CatchUp.SKIP else list(missed)
    if task.catch_up is CatchUp.LATEST:
        kept = kept[-1:]
    return FiringPlan(
        [Firing(at, True) for at in kept] + [Firing(at, False) for at in on_time], following
    )
