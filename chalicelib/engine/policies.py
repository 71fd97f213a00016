"""Pure policy maths of DESIGN §4: catch-up, backoff. No I/O, no clock reads."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.schedules.model import fire_times, parse_schedule, parse_timezone
from chalicelib.tasks.model import ONE_DAY_S, Backoff, CatchUp, Kind, Task

#: A firing more than this late counts as missed (DESIGN §4 catch_up).
MISSED_AFTER = timedelta(seconds=60)
#: At most this many missed firings are looked for (DESIGN §4 catch_up_window).
MAX_CATCH_UP = 1000
#: Retry and restart delays are capped at one day.
MAX_BACKOFF_S = float(ONE_DAY_S)


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


#: Walks the fire times of a schedule strictly after a given instant (`fire_times`'s shape).
FireTimes = Callable[..., Iterator[datetime]]


def plan_firings(
    task: Task, *, now: datetime, horizon: datetime, walk: FireTimes = fire_times
) -> FiringPlan:
    """The firings of `task` from its `next_run_at` up to `horizon` (now + lookahead).

    Firings more than MISSED_AFTER late are missed ones, treated per `catch_up`:
    `latest` keeps the newest of them, `all` keeps every one within
    `catch_up_window` (the newest MAX_CATCH_UP, oldest first), `skip` keeps
    none. Firings within MISSED_AFTER of now, or ahead of it, are always kept.
    The work grows with the firings kept, not with the time the task was missed
    for (`_newest_missed`). `walk` is `fire_times` (tests count its steps).
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

    def times_from(first: datetime) -> Iterator[datetime]:
        """Fire times at or after `first`, ascending."""
        return walk(schedule, zone, first - _JUST_BEFORE, anchor=task.anchor_at)

    missed_before = now - MISSED_AFTER
    kept: list[datetime] = []
    if task.catch_up is not CatchUp.SKIP and start < missed_before:
        # Missed firings older than the window are dropped whatever the policy.
        earliest = max(start, now - timedelta(seconds=task.catch_up_window))
        keep = 1 if task.catch_up is CatchUp.LATEST else MAX_CATCH_UP
        kept = _newest_missed(times_from, earliest, missed_before, keep)

    on_time: list[datetime] = []
    for at in times_from(max(start, missed_before)):
        if at > horizon:
            following: datetime | None = at
            break
        on_time.append(at)
    else:  # a one-shot ran out of firings
        following = None
    return FiringPlan(
        [Firing(at, True) for at in kept] + [Firing(at, False) for at in on_time], following
    )


_JUST_BEFORE = timedelta(microseconds=1)
#: How far back `previous_fire_time` looks: a year and a day holds the fire
#: time before any schedule that fires at least yearly.
PREVIOUS_LOOK_BACK = timedelta(days=367)
#: The first stretch before `missed_before` looked at for missed firings.
_FIRST_LOOK_BACK = timedelta(seconds=1)


def previous_fire_time(task: Task, before: datetime) -> datetime | None:
    """The task's fire time just before `before`, looked for within
    PREVIOUS_LOOK_BACK (None if none is, or the task has no schedule). A few
    steps for a dense schedule, a few dozen looks for a yearly one."""
    if task.schedule is None:
        return None
    schedule = parse_schedule(task.schedule)
    zone = parse_timezone(task.timezone)

    def times_from(first: datetime) -> Iterator[datetime]:
        return fire_times(schedule, zone, first - _JUST_BEFORE, anchor=task.anchor_at)

    newest = _newest_missed(times_from, before - PREVIOUS_LOOK_BACK, before, keep=1)
    return newest[0] if newest else None


def _newest_missed(
    times_from: Callable[[datetime], Iterator[datetime]],
    earliest: datetime,
    missed_before: datetime,
    keep: int,
) -> list[datetime]:
    """The newest `keep` fire times in [earliest, missed_before), oldest first.

    Schedules only walk forward, so rather than walk the whole window (a
    per-second task missed for a day is 86,400 steps) look back from
    `missed_before` over a stretch that doubles until it holds `keep` firings
    or reaches `earliest`: about 2·keep steps for a dense schedule, and a few
    dozen looks for a sparse one over the longest window.
    """
    look_back = _FIRST_LOOK_BACK
    while True:
        first = max(earliest, missed_before - look_back)
        newest: deque[datetime] = deque(maxlen=keep)
        found = 0
        for at in times_from(first):
            if at >= missed_before:
                break
            newest.append(at)
            found += 1
        if found >= keep or first == earliest:
            return list(newest)
        look_back *= 2
