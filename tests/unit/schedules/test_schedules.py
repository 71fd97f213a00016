"""Table-driven tests for chalicelib.schedules.model.

Expected instants were worked out by hand from the zone rules, not from the implementation:
- Europe/Amsterdam: CET +01:00 / CEST +02:00. 2027-03-28 01:00Z local 02:00 -> 03:00;
  2027-10-31 01:00Z local 03:00 -> 02:00 (walls 02:00-02:59 occur twice).
- America/New_York: EST -05:00 / EDT -04:00. 2027-03-14 07:00Z local 02:00 -> 03:00;
  2027-11-07 06:00Z local 02:00 -> 01:00 (walls 01:00-01:59 occur twice).
- Asia/Kolkata: +05:30, no DST.
- 2027-01-01 is a Friday; 2028-01-01 is a Saturday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.schedules.model import (
    Schedule,
    ScheduleError,
    fire_times,
    next_fire,
    parse_schedule,
    parse_timezone,
    upcoming,
)

AMS = "Europe/Amsterdam"
NYC = "America/New_York"
KOL = "Asia/Kolkata"
ANCHOR = datetime(2027, 1, 1, tzinfo=UTC)


def z(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    """An aware UTC datetime (the 'Z' suffix of the expected instants)."""
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def run(
    text: str, zone: str, after: datetime, count: int, anchor: datetime = ANCHOR
) -> list[datetime]:
    return upcoming(parse_schedule(text), parse_timezone(zone), after, anchor=anchor, count=count)


# (schedule, zone, after, expected first fire times)
CRON_CASES: list[tuple[str, str, datetime, list[datetime]]] = [
    (
        "*/15 * * * *",
        "UTC",
        z(2027, 1, 1, 10, 7, 30),
        [z(2027, 1, 1, 10, 15), z(2027, 1, 1, 10, 30), z(2027, 1, 1, 10, 45), z(2027, 1, 1, 11)],
    ),
    # 6-field cron: seconds come first.
    (
        "*/2 * * * * *",
        "UTC",
        z(2027, 1, 1, 10, 0, 0, 500_000),
        [z(2027, 1, 1, 10, 0, s) for s in (2, 4, 6, 8, 10)],
    ),
    (
        "30 0 9 * * MON",
        "UTC",
        z(2027, 1, 1),
        [z(2027, 1, d, 9, 0, 30) for d in (4, 11, 18, 25)] + [z(2027, 2, 1, 9, 0, 30)],
    ),
    # Names: weekdays of January only; Jan 29 2027 is a Friday, so next is January 2028.
    (
        "0 9 * JAN MON-FRI",
        "UTC",
        z(2027, 1, 29, 12),
        [z(2028, 1, d, 9) for d in (3, 4, 5, 6, 7)],
    ),
    ("0 9 * jan mon-fri", "UTC", z(2027, 1, 29, 12), [z(2028, 1, 3, 9)]),
    (
        "0 0 L * *",
        "UTC",
        z(2027, 1, 15),
        [z(2027, 1, 31), z(2027, 2, 28), z(2027, 3, 31), z(2027, 4, 30)],
    ),
    (
        "0 0 * * FRI#2",
        "UTC",
        z(2027, 1, 1),
        [z(2027, 1, 8), z(2027, 2, 12), z(2027, 3, 12), z(2027, 4, 9), z(2027, 5, 14)],
    ),
    # A reversed range wraps around midnight.
    (
        "0 23-1 * * *",
        "UTC",
        z(2027, 1, 1, 12),
        [z(2027, 1, 1, 23), z(2027, 1, 2, 0), z(2027, 1, 2, 1), z(2027, 1, 2, 23)],
    ),
    # Both day fields restricted: a day matches if EITHER matches (Vixie cron / croniter rule).
    (
        "0 0 13 * FRI",
        "UTC",
        z(2027, 1, 1),
        [z(2027, 1, 8), z(2027, 1, 13), z(2027, 1, 15), z(2027, 1, 22), z(2027, 1, 29)],
    ),
    # Aliases, from exactly midnight 2027-01-01Z (a fire time for most of them: strictly after).
    ("@yearly", "UTC", z(2027, 1, 1), [z(2028, 1, 1), z(2029, 1, 1)]),
    ("@annually", "UTC", z(2027, 1, 1), [z(2028, 1, 1), z(2029, 1, 1)]),
    ("@monthly", "UTC", z(2027, 1, 1), [z(2027, 2, 1), z(2027, 3, 1)]),
    ("@weekly", "UTC", z(2027, 1, 1), [z(2027, 1, 3), z(2027, 1, 10)]),
    ("@daily", "UTC", z(2027, 1, 1), [z(2027, 1, 2), z(2027, 1, 3)]),
    ("@midnight", "UTC", z(2027, 1, 1), [z(2027, 1, 2), z(2027, 1, 3)]),
    ("@hourly", "UTC", z(2027, 1, 1), [z(2027, 1, 1, 1), z(2027, 1, 1, 2)]),
    ("@DAILY", "UTC", z(2027, 1, 1), [z(2027, 1, 2)]),
    # Midnight Amsterdam in winter is 23:00Z the day before.
    ("@daily", AMS, z(2027, 1, 1), [z(2027, 1, 1, 23), z(2027, 1, 2, 23)]),
    # --- Amsterdam spring forward 2027-03-28: walls 02:00-02:59 do not exist -> 01:00Z.
    (
        "30 2 * * *",
        AMS,
        z(2027, 3, 27),
        [z(2027, 3, 27, 1, 30), z(2027, 3, 28, 1), z(2027, 3, 29, 0, 30)],
    ),
    ("0 2 * * *", AMS, z(2027, 3, 27, 12), [z(2027, 3, 28, 1), z(2027, 3, 29, 0)]),
    (
        "*/15 2 * * *",
        AMS,
        z(2027, 3, 27, 12),
        [z(2027, 3, 28, 1), z(2027, 3, 29, 0), z(2027, 3, 29, 0, 15), z(2027, 3, 29, 0, 30)],
    ),
    (
        "0 * * * *",
        AMS,
        z(2027, 3, 27, 23, 30),
        [z(2027, 3, 28, 0), z(2027, 3, 28, 1), z(2027, 3, 28, 2), z(2027, 3, 28, 3)],
    ),
    (
        "*/30 * * * *",
        AMS,
        z(2027, 3, 28, 0),
        [z(2027, 3, 28, 0, 30), z(2027, 3, 28, 1), z(2027, 3, 28, 1, 30), z(2027, 3, 28, 2)],
    ),
    # --- Amsterdam fall back 2027-10-31: fixed hours fire on the first pass (+02:00) only.
    ("30 2 * * *", AMS, z(2027, 10, 30, 12), [z(2027, 10, 31, 0, 30), z(2027, 11, 1, 1, 30)]),
    ("0 2 * * *", AMS, z(2027, 10, 30, 12), [z(2027, 10, 31, 0), z(2027, 11, 1, 1)]),
    (
        "*/15 2 * * *",
        AMS,
        z(2027, 10, 30, 12),
        [z(2027, 10, 31, 0, m) for m in (0, 15, 30, 45)] + [z(2027, 11, 1, 1)],
    ),
    # `after` inside the first pass: the second pass is still skipped.
    (
        "*/15 2 * * *",
        AMS,
        z(2027, 10, 31, 0, 20),
        [z(2027, 10, 31, 0, 30), z(2027, 10, 31, 0, 45), z(2027, 11, 1, 1)],
    ),
    ("*/15 2 * * *", AMS, z(2027, 10, 31, 1, 10), [z(2027, 11, 1, 1)]),
    # A range is fixed hours too: 01:00+02, 02:00+02 (first pass only), 03:00+01.
    (
        "0 1-3 * * *",
        AMS,
        z(2027, 10, 30, 22),
        [z(2027, 10, 30, 23), z(2027, 10, 31, 0), z(2027, 10, 31, 2)],
    ),
    ("0 30 2 * * *", AMS, z(2027, 10, 30, 12), [z(2027, 10, 31, 0, 30), z(2027, 11, 1, 1, 30)]),
    # Wildcard / stepped hours fire on both passes: 02:00+02, 02:00+01, 03:00+01, ...
    (
        "0 * * * *",
        AMS,
        z(2027, 10, 30, 23, 30),
        [z(2027, 10, 31, 0), z(2027, 10, 31, 1), z(2027, 10, 31, 2), z(2027, 10, 31, 3)],
    ),
    (
        "*/30 * * * *",
        AMS,
        z(2027, 10, 30, 23, 45),
        [z(2027, 10, 31, h, m) for h, m in ((0, 0), (0, 30), (1, 0), (1, 30), (2, 0))],
    ),
    ("@hourly", AMS, z(2027, 10, 30, 23, 30), [z(2027, 10, 31, h) for h in (0, 1, 2)]),
    ("0 0 */1 * * *", AMS, z(2027, 10, 30, 23, 30), [z(2027, 10, 31, h) for h in (0, 1, 2)]),
    # `after` inside the first pass (02:30+02) / the second pass (02:30+01).
    ("0 * * * *", AMS, z(2027, 10, 31, 0, 30), [z(2027, 10, 31, 1), z(2027, 10, 31, 2)]),
    (
        "*/30 * * * *",
        AMS,
        z(2027, 10, 31, 0, 45),
        [z(2027, 10, 31, 1), z(2027, 10, 31, 1, 30), z(2027, 10, 31, 2)],
    ),
    ("0 * * * *", AMS, z(2027, 10, 31, 1, 30), [z(2027, 10, 31, 2), z(2027, 10, 31, 3)]),
    # --- New York: gap 02:00-02:59 on 2027-03-14 -> 07:00Z; 01:xx twice on 2027-11-07.
    ("30 2 * * *", NYC, z(2027, 3, 13, 12), [z(2027, 3, 14, 7), z(2027, 3, 15, 6, 30)]),
    ("30 1 * * *", NYC, z(2027, 11, 6, 12), [z(2027, 11, 7, 5, 30), z(2027, 11, 8, 6, 30)]),
    (
        "0 * * * *",
        NYC,
        z(2027, 11, 7, 3, 30),
        [z(2027, 11, 7, 4), z(2027, 11, 7, 5), z(2027, 11, 7, 6), z(2027, 11, 7, 7)],
    ),
    # --- Kolkata: +05:30 all year.
    ("0 9 * * *", KOL, z(2027, 1, 1), [z(2027, 1, 1, 3, 30), z(2027, 1, 2, 3, 30)]),
    ("30 * * * *", KOL, z(2027, 1, 1), [z(2027, 1, 1, 1), z(2027, 1, 1, 2), z(2027, 1, 1, 3)]),
    ("0 * * * *", KOL, z(2027, 1, 1), [z(2027, 1, 1, 0, 30), z(2027, 1, 1, 1, 30)]),
    ("0 9 * * *", KOL, z(2027, 7, 1), [z(2027, 7, 1, 3, 30)]),
]


@pytest.mark.parametrize(("text", "zone", "after", "expected"), CRON_CASES)
def test_cron_fire_times(text: str, zone: str, after: datetime, expected: list[datetime]) -> None:
    got = run(text, zone, after, len(expected))
    assert got == expected
    assert all(t.tzinfo is UTC for t in got)


# (schedule, anchor, after, expected)
EVERY_CASES: list[tuple[str, datetime, datetime, list[datetime]]] = [
    # `after` before the anchor: the first fire is anchor + d, never the anchor itself.
    ("@every 30s", ANCHOR, z(2026, 12, 31, 23), [z(2027, 1, 1, 0, 0, s) for s in (30,)]),
    (
        "@every 30s",
        ANCHOR,
        ANCHOR,
        [z(2027, 1, 1, 0, 0, 30), z(2027, 1, 1, 0, 1), z(2027, 1, 1, 0, 1, 30)],
    ),
    ("@every 5m", ANCHOR, z(2027, 1, 1, 0, 7), [z(2027, 1, 1, 0, 10), z(2027, 1, 1, 0, 15)]),
    # 59 days = 1416 h = 944 * 1h30m, so `after` is exactly a fire time.
    (
        "@every 1h30m",
        ANCHOR,
        z(2027, 3, 1),
        [z(2027, 3, 1, 1, 30), z(2027, 3, 1, 3), z(2027, 3, 1, 4, 30)],
    ),
    (
        "@every 90s",
        ANCHOR,
        z(2027, 1, 1, 0, 1, 29, 999_999),
        [z(2027, 1, 1, 0, 1, 30), z(2027, 1, 1, 0, 3)],
    ),
    ("@every 2h", ANCHOR, z(2030, 1, 1, 0, 0, 1), [z(2030, 1, 1, 2)]),
    # Anchor microseconds are dropped; an anchor in another offset is the same instant.
    ("@every 2h", z(2027, 1, 1, 0, 0, 0, 700_000), ANCHOR, [z(2027, 1, 1, 2), z(2027, 1, 1, 4)]),
    (
        "@every 1h",
        datetime(2027, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        ANCHOR,
        [z(2027, 1, 1, 1)],
    ),
]


@pytest.mark.parametrize(("text", "anchor", "after", "expected"), EVERY_CASES)
def test_every_fire_times(
    text: str, anchor: datetime, after: datetime, expected: list[datetime]
) -> None:
    assert run(text, AMS, after, len(expected), anchor=anchor) == expected


def test_every_ignores_dst() -> None:
    # Absolute time: 1h steps straight through the Amsterdam fall-back.
    anchor = z(2027, 10, 30, 23)
    got = run("@every 1h", AMS, anchor, 4, anchor=anchor)
    assert got == [z(2027, 10, 31, h) for h in (0, 1, 2, 3)]


# (schedule, after, expected)
ONCE_CASES: list[tuple[str, datetime, list[datetime]]] = [
    ("@once 2027-01-01T09:00:00+01:00", z(2026, 12, 31), [z(2027, 1, 1, 8)]),
    ("@once 2027-01-01T09:00:00+01:00", z(2027, 1, 1, 7, 59, 59, 999_999), [z(2027, 1, 1, 8)]),
    ("@once 2027-01-01T09:00:00+01:00", z(2027, 1, 1, 8), []),
    ("@once 2027-01-01T09:00:00+01:00", z(2028, 1, 1), []),
    ("@once 2027-06-01t12:00:00z", z(2027, 1, 1), [z(2027, 6, 1, 12)]),
    ("@once 2027-06-01T12:00:00-04:00", z(2027, 1, 1), [z(2027, 6, 1, 16)]),
]


@pytest.mark.parametrize(("text", "after", "expected"), ONCE_CASES)
def test_once_fire_times(text: str, after: datetime, expected: list[datetime]) -> None:
    assert run(text, AMS, after, 5) == expected


# (schedule, after, expected next fire)
NEXT_CASES: list[tuple[str, datetime, datetime | None]] = [
    ("0 9 * * *", z(2027, 1, 1, 9), z(2027, 1, 2, 9)),
    ("0 9 * * *", z(2027, 1, 1, 8, 59, 59, 999_999), z(2027, 1, 1, 9)),
    ("0 9 * * *", z(2027, 1, 1, 9, 0, 0, 1), z(2027, 1, 2, 9)),
    ("* * * * * *", z(2027, 1, 1, 9, 0, 0, 1), z(2027, 1, 1, 9, 0, 1)),
    ("@every 30s", z(2027, 1, 1, 0, 0, 30), z(2027, 1, 1, 0, 1)),
    ("@once 2027-01-01T09:00:00Z", z(2027, 1, 1, 9), None),
    ("@once 2027-01-01T09:00:00Z", z(2027, 1, 1, 8), z(2027, 1, 1, 9)),
]


@pytest.mark.parametrize(("text", "after", "expected"), NEXT_CASES)
def test_next_fire_is_strictly_after(text: str, after: datetime, expected: datetime | None) -> None:
    assert next_fire(parse_schedule(text), parse_timezone("UTC"), after, anchor=ANCHOR) == expected


def test_upcoming_default_count_is_five() -> None:
    got = upcoming(parse_schedule("0 9 * * *"), parse_timezone("UTC"), z(2027, 1, 1), anchor=ANCHOR)
    assert got == [z(2027, 1, d, 9) for d in (1, 2, 3, 4, 5)]


@pytest.mark.parametrize(("count", "expected_len"), [(0, 0), (1, 1), (12, 12)])
def test_upcoming_count(count: int, expected_len: int) -> None:
    assert len(run("@hourly", "UTC", z(2027, 1, 1), count)) == expected_len


def test_upcoming_negative_count_rejected() -> None:
    with pytest.raises(ValueError, match="count"):
        run("@hourly", "UTC", z(2027, 1, 1), -1)


def test_fire_times_is_ascending_and_infinite() -> None:
    it = fire_times(
        parse_schedule("*/20 * * * *"), parse_timezone(AMS), z(2027, 10, 30), anchor=ANCHOR
    )
    got = [next(it) for _ in range(200)]
    assert got == sorted(set(got))
    assert got[-1] > z(2027, 11, 1)


NAIVE = datetime(2027, 1, 1, tzinfo=UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("after", "anchor", "name"), [(NAIVE, ANCHOR, "after"), (ANCHOR, NAIVE, "anchor")]
)
def test_naive_datetimes_rejected_eagerly(after: datetime, anchor: datetime, name: str) -> None:
    schedule = parse_schedule("@hourly")
    # Raised on the call itself, not on the first next().
    with pytest.raises(ValueError, match=name):
        fire_times(schedule, parse_timezone("UTC"), after, anchor=anchor)


# (input, expected Schedule)
PARSE_CASES: list[tuple[str, Schedule]] = [
    (
        "  0   9 *\t* MON \n",
        Schedule(text="0 9 * * MON", kind="cron", cron="0 9 * * MON", fixed_hours=True),
    ),
    ("0 */2 * * *", Schedule(text="0 */2 * * *", kind="cron", cron="0 */2 * * *")),
    ("*/5 * * * *", Schedule(text="*/5 * * * *", kind="cron", cron="*/5 * * * *")),
    (
        "0 8,20 * * *",
        Schedule(text="0 8,20 * * *", kind="cron", cron="0 8,20 * * *", fixed_hours=True),
    ),
    (
        "30 0 9 * * MON",
        Schedule(
            text="30 0 9 * * MON",
            kind="cron",
            cron="30 0 9 * * MON",
            has_seconds=True,
            fixed_hours=True,
        ),
    ),
    ("@hourly", Schedule(text="@hourly", kind="cron", cron="0 * * * *")),
    ("@Daily", Schedule(text="@daily", kind="cron", cron="0 0 * * *", fixed_hours=True)),
    ("@weekly", Schedule(text="@weekly", kind="cron", cron="0 0 * * 0", fixed_hours=True)),
    ("@monthly", Schedule(text="@monthly", kind="cron", cron="0 0 1 * *", fixed_hours=True)),
    ("@annually", Schedule(text="@annually", kind="cron", cron="0 0 1 1 *", fixed_hours=True)),
    ("@every   1h30m", Schedule(text="@every 1h30m", kind="every", every_s=5400)),
    ("@every 90s", Schedule(text="@every 90s", kind="every", every_s=90)),
    ("@every 2h", Schedule(text="@every 2h", kind="every", every_s=7200)),
    (
        "@once 2027-01-01T09:00:00+01:00",
        Schedule(text="@once 2027-01-01T09:00:00+01:00", kind="once", once_at=z(2027, 1, 1, 8)),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_schedule(text: str, expected: Schedule) -> None:
    assert parse_schedule(text) == expected


# (input, substrings the message must contain)
ERROR_CASES: list[tuple[str, list[str]]] = [
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("0 9 * *", ["got 4", "'0 9 * *'"]),
    ("0 0 9 * * * 2027", ["got 7"]),
    ("60 * * * *", ["cron field 'minute' value 60 is out of range 0-59"]),
    ("0 25 * * *", ["cron field 'hour' value 25 is out of range 0-23"]),
    ("0 0 0 * *", ["'day-of-month' value 0 is out of range 1-31"]),
    ("0 0 1 13 *", ["'month' value 13 is out of range 1-12"]),
    ("0 0 * * 8", ["'day-of-week' value 8 is out of range 0-7"]),
    ("61 0 0 * * *", ["'second' value 61 is out of range 0-59"]),
    ("0 0 24 * * *", ["'hour' value 24"]),  # 6 fields: hour is the third
    ("0 0 * FOO *", ["'month' value 'FOO'", "JAN-DEC"]),
    ("0 0 * * MONDAY", ["'day-of-week' value 'MONDAY'", "SUN-SAT"]),
    ("0 MON * * *", ["'hour' value 'MON' is not a number"]),
    ("0 -5 * * *", ["'hour'", "'-5'"]),
    ("0 H * * *", ["'hour'", "'H'"]),
    ("*/0 * * * *", ["'minute' step '0'"]),
    ("*/90 * * * *", ["'minute' step '90'", "1-59"]),
    ("1,,2 * * * *", ["'minute'", "'1,,2'"]),
    ("0 0 * * FRI#6", ["'FRI#6'"]),
    ("0 0 ? * ?", []),  # accepted: checked separately below
    ("0 0 30 2 *", ["'0 0 30 2 *' never fires"]),
    ("0 0 31 4,6,9,11 *", ["never fires"]),
    ("@reboot", ["unknown alias '@reboot'"]),
    ("@fortnightly", ["unknown alias '@fortnightly'"]),
    ("@daily 5", ["'@daily' takes no arguments", "'5'"]),
    ("@every", ["@every needs"]),
    ("@every 0s", ["'0s'", "at least 1s"]),
    ("@every 0h0m", ["'0h0m'"]),
    ("@every 1.5x", ["'1.5x'"]),
    ("@every 1.5h", ["'1.5h'"]),
    ("@every 5", ["'5'"]),
    ("@every 5M", ["'5M'"]),
    ("@every 1h 30m", ["@every needs exactly one"]),
    ("@every 9000h", ["'9000h'", "at most"]),
    ("@once", ["@once needs"]),
    ("@once 2027-01-01T09:00:00", ["'2027-01-01T09:00:00' has no UTC offset"]),
    ("@once tomorrow", ["'tomorrow'"]),
    ("@once 2027-02-30T09:00:00Z", ["'2027-02-30T09:00:00Z'"]),
    ("@once 2027-01-01T09:00:00.5Z", ["'2027-01-01T09:00:00.5Z'", "whole seconds"]),
]


@pytest.mark.parametrize(("text", "fragments"), [c for c in ERROR_CASES if c[1]])
def test_parse_schedule_errors(text: str, fragments: list[str]) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert not message.lower().startswith("schedule:")


def test_question_mark_means_any_day() -> None:
    got = run("0 0 ? * ?", "UTC", z(2027, 1, 1), 2)
    assert got == [z(2027, 1, 2), z(2027, 1, 3)]


@pytest.mark.parametrize(
    "name", ["UTC", AMS, NYC, KOL, "Etc/GMT+5", "America/Argentina/Buenos_Aires"]
)
def test_parse_timezone_valid(name: str) -> None:
    assert parse_timezone(name).key == name


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Base",
        "../etc/passwd",
        "",
        "/etc/passwd",
        "Europe",
        "Europe/Amsterdam ",
        "x" * 300,
        "a\0b",
        "localtime",
        "right/UTC",
    ],
)
def test_parse_timezone_invalid(name: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_timezone(name)
    assert str(info.value) == f"unknown time zone {name!r}"
