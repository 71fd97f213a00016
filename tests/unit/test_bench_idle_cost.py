"""bench.idle_cost's pure parts: schedules that stay idle for the hour, and the
scaling of a measured span to an hour."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from arq.cron import next_cron
from croniter import croniter

from bench.idle_cost import HOUR_START, HourScale, Outcome, cron_text, idle_crons, per_hour

HOUR = timedelta(hours=1)
#: Instants a run may start at: the top of an hour, its last moment, midnight, late evening.
STARTS = [
    HOUR_START,
    datetime(2026, 12, 8, 1, 22, 5, tzinfo=UTC),
    datetime(2026, 12, 8, 9, 59, 59, 999_000, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    datetime(2027, 3, 1, 0, 0, tzinfo=UTC),
]


@pytest.mark.parametrize("now", STARTS)
def test_no_schedule_fires_within_an_hour_by_croniter_and_arq(now: datetime) -> None:
    for minute, hour in idle_crons(60, now, random.Random(7)):
        first = croniter(cron_text(minute, hour), now).get_next(datetime)
        assert first - now > HOUR, (minute, hour, first)
        # ARQ's own schedule maths, as its worker computes the job's next run.
        assert next_cron(now, minute=minute, hour=hour) - now > HOUR, (minute, hour)


@pytest.mark.parametrize("now", STARTS)
def test_no_crontab_entry_is_due_within_an_hour_by_celery(now: datetime) -> None:
    schedules = pytest.importorskip("celery.schedules", reason="`make bench-deps` installs it")
    for minute, hour in idle_crons(40, now, random.Random(7)):
        entry = schedules.crontab(minute=minute, hour=hour, nowfun=lambda: now)
        due, next_check_s = entry.is_due(now)
        assert not due
        assert entry.remaining_estimate(now) > HOUR, (minute, hour)
        assert next_check_s > HOUR.total_seconds()


def test_the_schedules_spread_over_every_allowed_hour_and_minute() -> None:
    pairs = idle_crons(5000, HOUR_START, random.Random(1))
    assert len(pairs) == 5000
    hours = {hour for _, hour in pairs}
    # 09:00 is the start: 10:00 is within the hour (and 09:xx would be too).
    assert hours == set(range(24)) - {9, 10}
    assert {minute for minute, _ in pairs} == set(range(60))
    assert idle_crons(50, HOUR_START, random.Random(1)) == pairs[:50]  # seeded


def test_ticks_scale_to_the_hour_by_sixty_over_n() -> None:
    five = HourScale(5, "ticks")
    assert five.span_s == 300
    assert five.factor == 12
    assert five.describe() == "5 ticks x 60/5"
    whole = HourScale(60, "ticks")
    assert whole.factor == 1
    assert whole.describe() == "60 ticks (the hour, run)"


def test_seconds_scale_to_the_hour_by_3600_over_the_window() -> None:
    window = HourScale(60.0, "s")
    assert window.factor == 60
    assert window.describe() == "60.0 s x 3600/60.0"
    assert per_hour(1.5, 30) == 180


def test_an_outcome_reports_its_requests_and_cpu_per_hour() -> None:
    outcome = Outcome(
        "Tickwork",
        "60 tick + 3,840 tick_shard invocations",
        HourScale(5, "ticks"),
        Counter({"Query": 960, "Invoke": 320}),
        cpu_s=2.5,
    )
    assert outcome.requests_per_hour() == 15_360
    assert outcome.cpu_per_hour() == 30
    assert outcome.by_name_per_hour() == "Query 11,520, Invoke 3,840"
