"""Pure policy maths with fixed instants: backoff, catch-up, the job state machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.engine.policies import (
    MAX_CATCH_UP,
    backoff_delay_s,
    plan_firings,
    previous_fire_time,
)
from chalicelib.jobs.model import TERMINAL, TRANSITIONS, JobStatus, can_move
from chalicelib.jobs.sqs import delay_until
from chalicelib.schedules.model import fire_times
from chalicelib.tasks.model import MAX_DURATION_S, Backoff, Task


def at(hour: int, minute: int = 0, second: int = 0, day: int = 4) -> datetime:
    return datetime(2027, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("backoff", "delay", "k", "expected"),
    [
        (Backoff.CONSTANT, 60, 1, 60),
        (Backoff.CONSTANT, 60, 5, 60),
        (Backoff.LINEAR, 60, 1, 60),
        (Backoff.LINEAR, 60, 3, 180),
        (Backoff.EXPONENTIAL, 60, 1, 60),
        (Backoff.EXPONENTIAL, 60, 2, 120),
        (Backoff.EXPONENTIAL, 60, 4, 480),
        (Backoff.EXPONENTIAL, 60, 20, 86_400),  # capped at a day
        (Backoff.LINEAR, 50_000, 2, 86_400),
        (Backoff.EXPONENTIAL, 1, 10_000, 86_400),  # no overflow
        (Backoff.CONSTANT, 0, 3, 0),
    ],
)
def test_backoff_formulas(backoff: Backoff, delay: float, k: int, expected: float) -> None:
    assert backoff_delay_s(backoff, delay, k) == expected


def test_backoff_counts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay_s(Backoff.CONSTANT, 1, 0)


def task(**fields: Any) -> Task:
    base = {
        "id": "tsk_1",
        "project_id": "p",
        "name": "t",
        "schedule": "0 * * * *",
        "action": "echo",
        "created_at": at(0),
        "updated_at": at(0),
        "anchor_at": at(0),
        "next_run_at": at(1),
    }
    return Task.model_validate({**base, **fields})


def plan(t: Task, now: datetime, lookahead_s: float = 75) -> tuple[list[tuple[int, bool]], Any]:
    result = plan_firings(t, now=now, horizon=now + timedelta(seconds=lookahead_s))
    return [(f.at.hour, f.missed) for f in result.firings], result.next_run_at


def test_on_time_firing_within_the_lookahead() -> None:
    assert plan(task(), at(0, 59, 30)) == ([(1, False)], at(2))
    assert plan(task(), at(0, 58)) == ([], at(1))  # not due yet: next stays


def test_a_firing_less_than_a_minute_late_is_not_missed() -> None:
    assert plan(task(), at(1, 0, 59)) == ([(1, False)], at(2))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("latest", [(4, True)]),
        ("all", [(1, True), (2, True), (3, True), (4, True)]),
        ("skip", []),
    ],
)
def test_catch_up_after_an_outage(policy: str, expected: list[tuple[int, bool]]) -> None:
    # Down from before 01:00 until 04:30: 01:00-04:00 were missed.
    assert plan(task(catch_up=policy), at(4, 30)) == (expected, at(5))


def test_catch_up_window_bounds_how_far_back_missed_firings_count() -> None:
    firings, following = plan(task(catch_up="all", catch_up_window=2 * 3600 + 1), at(4, 30))
    assert firings == [(3, True), (4, True)]
    assert following == at(5)


def test_catch_up_all_keeps_at_most_the_newest_thousand() -> None:
    t = task(schedule="* * * * *", catch_up="all", next_run_at=at(0), catch_up_window=86_400)
    result = plan_firings(t, now=at(23, 0), horizon=at(23, 0, 30))
    missed = [f for f in result.firings if f.missed]
    assert len(missed) == MAX_CATCH_UP
    # 22:59 and 23:00 are less than a minute late: on time, not missed.
    assert missed[-1].at == at(22, 58)
    assert missed[0].at == at(22, 58) - timedelta(minutes=MAX_CATCH_UP - 1)
    assert [f.at for f in result.firings if not f.missed] == [at(22, 59), at(23)]


def test_a_one_shot_fires_once_then_has_no_next_run() -> None:
    t = task(schedule="@once 2027-01-04T01:00:00Z")
    assert plan(t, at(0, 59, 30)) == ([(1, False)], None)


def test_per_second_schedule_fills_the_lookahead() -> None:
    t = task(schedule="*/2 * * * * *", next_run_at=at(9, 0, 2))
    result = plan_firings(t, now=at(9), horizon=at(9, 0, 10))
    assert [f.at.second for f in result.firings] == [2, 4, 6, 8, 10]
    assert result.next_run_at == at(9, 0, 12)


def test_dst_day_firings_follow_the_schedule_rules() -> None:
    # Amsterdam, 2027-10-31: 02:30 local happens twice; a fixed-hour schedule fires once.
    t = task(
        schedule="30 2 * * *",
        timezone="Europe/Amsterdam",
        next_run_at=datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
    )
    now = datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    result = plan_firings(t, now=now, horizon=now + timedelta(hours=3))
    assert [f.at for f in result.firings] == [now]
    assert result.next_run_at == datetime(2027, 11, 1, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_states_are_never_left(status: JobStatus) -> None:
    assert TRANSITIONS[status] == frozenset()
    assert not any(can_move(status, other) for other in JobStatus)


def test_every_status_has_a_row_and_only_active_moves_to_complete() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    assert [s for s in JobStatus if can_move(s, JobStatus.COMPLETE)] == [JobStatus.ACTIVE]
    assert can_move(JobStatus.ACTIVE, JobStatus.ACTIVE)  # restart after a lost lease
    assert can_move(JobStatus.ACTIVE, JobStatus.SCHEDULED)  # a retry waits


@pytest.mark.parametrize(
    ("seconds", "delay"),
    [(0, 0), (0.4, 0), (1.0, 0), (1.9, 0), (2.0, 1), (10.5, 9), (900, 899), (5000, 900), (-3, 0)],
)
def test_messages_arrive_early_never_late(seconds: float, delay: int) -> None:
    now = at(9)
    assert delay_until(now + timedelta(seconds=seconds), now) == delay


class CountingWalk:
    """`fire_times`, counting the fire times it yields (the planner's work)."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[datetime]:
        for at in fire_times(*args, **kwargs):
            self.steps += 1
            yield at


@pytest.mark.parametrize(("policy", "kept"), [("latest", 1), ("all", MAX_CATCH_UP)])
def test_a_year_old_per_second_task_plans_in_work_bounded_by_what_it_keeps(
    policy: str, kept: int
) -> None:
    # Missed for a year, with the longest window: walking it would be 31.6 M steps.
    now = at(9)
    t = task(
        schedule="* * * * * *",
        catch_up=policy,
        catch_up_window=MAX_DURATION_S,
        next_run_at=now - timedelta(days=365),
    )
    walk = CountingWalk()
    result = plan_firings(t, now=now, horizon=now + timedelta(seconds=75), walk=walk)

    missed = [f.at for f in result.firings if f.missed]
    newest_missed = now - timedelta(seconds=61)
    assert missed == [newest_missed - timedelta(seconds=n) for n in reversed(range(kept))]
    on_time = [f.at for f in result.firings if not f.missed]
    assert on_time == [now + timedelta(seconds=s) for s in range(-60, 76)]
    assert result.next_run_at == now + timedelta(seconds=76)
    assert walk.steps <= 4 * kept + 200


def test_a_sparse_schedule_missed_for_a_year_is_found_in_few_looks() -> None:
    now = at(9, 30)
    t = task(
        schedule="0 9 * * *",
        catch_up="latest",
        catch_up_window=MAX_DURATION_S,
        next_run_at=now - timedelta(days=365),
    )
    walk = CountingWalk()
    result = plan_firings(t, now=now, horizon=now + timedelta(seconds=75), walk=walk)
    assert [(f.at, f.missed) for f in result.firings] == [(at(9), True)]
    assert result.next_run_at == at(9, day=5)
    assert walk.steps <= 64


@pytest.mark.parametrize(
    ("fields", "before", "expected"),
    [
        ({"schedule": "* * * * * *"}, at(3, 0, 0), at(2, 59, 59)),
        ({"schedule": "0 * * * *"}, at(3), at(2)),
        ({"schedule": "0 * * * *"}, at(3, 0, 1), at(3)),
        # The hour before 01:30 in Paris is 00:30 local, 23:30 UTC the day before.
        ({"schedule": "30 * * * *", "timezone": "Europe/Paris"}, at(0, 30), at(23, 30, day=3)),
        ({"schedule": "0 0 1 1 *"}, at(0, day=1), datetime(2026, 1, 1, tzinfo=UTC)),
        ({"schedule": "@every 90s", "anchor_at": at(0)}, at(0, 4, 30), at(0, 3)),
        ({"schedule": "@every 90s", "anchor_at": at(0)}, at(0, 1, 30), None),  # anchor: none before
        ({"schedule": "0 0 29 2 *"}, at(0, day=1), None),  # leap days: past the year looked at
    ],
)
def test_the_fire_time_before_an_instant(
    fields: dict[str, Any], before: datetime, expected: datetime | None
) -> None:
    assert previous_fire_time(task(**fields), before) == expected
