"""Schedule parsing and fire-time computation for Tickwork tasks.

Pure functions only: no I/O and no wall-clock reads, so callers pass every instant in.
All instants returned are aware datetimes in UTC with whole seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter


class ScheduleError(ValueError):
    """A schedule or time zone the user supplied is invalid; str() is a user-facing message."""


@dataclass(frozen=True)
class Schedule:
    """A validated schedule. Build it with parse_schedule(), not directly."""

    text: str  # the input with whitespace collapsed (alias keyword lower-cased)
    kind: Literal["cron", "every", "once"]
    cron: str = ""  # cron expression after alias expansion ("" unless kind == "cron")
    has_seconds: bool = False  # 6-field cron, seconds first
    fixed_hours: bool = False  # hour field has no '*' and no '/': fires once on DST fall-back
    every_s: int = 0  # @every period in seconds
    once_at: datetime | None = None  # @once instant, aware UTC


_ALIASES: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}
_DAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: Mapping[str, int]
    name_hint: str = ""  # e.g. "month name (JAN-DEC)", used in error messages


_SECOND = _Field("second", 0, 59, {})
_FIELDS_5 = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS, "month name (JAN-DEC)"),
    _Field("day-of-week", 0, 7, _DAYS, "day name (SUN-SAT)"),  # 0 and 7 are both Sunday
)
_DIGITS = re.compile(r"[0-9]+")
# Go-style duration restricted to whole h/m/s parts, in that order: "90s", "1h30m".
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_MAX_EVERY_S = 365 * 24 * 3600  # keeps anchor + k*d far from datetime overflow
# RFC 3339 date-time; the offset group is optional only so a naive time gets a clear message.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
#: Instants users give (an `@once`, a backfill's range) are before this: timeouts,
#: retries and retention add up to a year to a fire time, and that stays in range.
LATEST_INSTANT = datetime(9998, 1, 1, tzinfo=UTC)
# A fixed, leap-year start for the "never fires" probe, so parsing never reads the clock.
_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None)
# Zone names are letters, digits, '_', '+', '-' separated by '/'; no dots keeps paths out.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]{1,64}(?:/[A-Za-z0-9_+\-]{1,64}){0,3}")
_HOST_ZONES = frozenset({"localtime", "posixrules"})


def parse_timezone(name: str) -> ZoneInfo:
    """Map an IANA zone name (e.g. 'Europe/Amsterdam') to a ZoneInfo; raise ScheduleError."""
    error = ScheduleError(f"unknown time zone {name!r}")
    # ZoneInfo would read arbitrary relative paths, so screen the shape first. 'localtime'
    # is the host's zone and 'right/' zones count leap seconds: neither is a portable IANA zone.
    if not _ZONE_NAME.fullmatch(name) or name in _HOST_ZONES or name.startswith("right/"):
        raise error
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise error from exc


# Pure and hot (every task read re-validates its spec): parse each text once.
@functools.lru_cache(maxsize=4096)
def parse_schedule(text: str) -> Schedule:
    """Parse and validate a schedule string; raise ScheduleError with a user-facing message."""
    tokens = text.split()
    if not tokens:
        raise ScheduleError("schedule is empty")
    if not tokens[0].startswith("@"):
        return _parse_cron(" ".join(tokens))
    keyword, args = tokens[0].lower(), tokens[1:]
    normalised = " ".join([keyword, *args])
    if keyword == "@every":
        if len(args) != 1:
            raise ScheduleError(
                "@every needs exactly one duration, e.g. '@every 5m' or '@every 1h30m'"
            )
        return Schedule(text=normalised, kind="every", every_s=_parse_duration(args[0]))
    if keyword == "@once":
        if len(args) != 1:
            raise ScheduleError(
                "@once needs exactly one RFC 3339 date-time, e.g. '@once 2027-01-01T09:00:00Z'"
            )
        return Schedule(text=normalised, kind="once", once_at=_parse_once(args[0]))
    if keyword not in _ALIASES:
        raise ScheduleError(f"unknown alias {tokens[0]!r}")
    if args:
        raise ScheduleError(f"alias {keyword!r} takes no arguments, got {' '.join(args)!r}")
    return dataclasses.replace(_parse_cron(_ALIASES[keyword]), text=normalised)


def _parse_duration(token: str) -> int:
    """Return the duration in seconds of a token like '1h30m'."""
    match = _DURATION.fullmatch(token)
    if not token or match is None:
        raise ScheduleError(
            f"invalid @every duration {token!r}: use whole h/m/s parts like '90s', '5m' or '1h30m'"
        )
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total < 1:
        raise ScheduleError(f"@every duration {token!r} must be at least 1s")
    if total > _MAX_EVERY_S:
        raise ScheduleError(f"@every duration {token!r} must be at most 8760h (365 days)")
    return total


def _parse_once(token: str) -> datetime:
    """Return the @once instant as an aware UTC datetime."""
    match = _RFC3339.fullmatch(token)
    if match is None:
        raise ScheduleError(
            f"invalid @once time {token!r}: use RFC 3339 like '2027-01-01T09:00:00+01:00'"
        )
    if match.group(2) is None:
        raise ScheduleError(
            f"@once time {token!r} has no UTC offset; add 'Z' or an offset like '+01:00'"
        )
    if match.group(1) is not None:
        raise ScheduleError(f"@once time {token!r} must be whole seconds")
    try:
        # fromisoformat in 3.11 accepts 'Z' but not lower-case 't'/'z', which RFC 3339 allows.
        instant = datetime.fromisoformat(token.upper()).astimezone(UTC)
    except ValueError as exc:
        raise ScheduleError(f"invalid @once time {token!r}: {exc}") from exc
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-23:59 is past datetime's range
        raise ScheduleError(f"@once time {token!r} is out of range") from exc
    if instant >= LATEST_INSTANT:
        raise ScheduleError(f"@once time {token!r} must be before {LATEST_INSTANT.isoformat()}")
    return instant


def _parse_cron(expr: str) -> Schedule:
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            "cron expression must have 5 fields (minute hour day-of-month month day-of-week) "
            f"or 6 fields (second first), got {len(fields)} in {expr!r}"
        )
    specs = (_SECOND, *_FIELDS_5) if len(fields) == 6 else _FIELDS_5
    for spec, field in zip(specs, fields, strict=True):
        _check_field(spec, field)
    has_seconds = len(fields) == 6
    hour = fields[2] if has_seconds else fields[1]
    try:
        # Probe from a fixed instant: croniter gives up on expressions like '0 0 30 2 *'.
        croniter(expr, _PROBE_START, second_at_beginning=has_seconds).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ScheduleError(f"cron expression {expr!r} never fires") from exc
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {exc}") from exc
    return Schedule(
        text=expr,
        kind="cron",
        cron=expr,
        has_seconds=has_seconds,
        fixed_hours="*" not in hour and "/" not in hour,
    )


def _check_field(spec: _Field, field: str) -> None:
    """Validate one cron field so errors name the field and the offending token."""
    for item in field.split(","):
        if not item:
            raise ScheduleError(f"cron field {spec.name!r} has an empty list item in {field!r}")
        if spec.name == "day-of-month" and item.upper() == "L":
            continue  # last day of the month
        if spec.name == "day-of-week" and "#" in item:
            day, _, nth = item.partition("#")  # e.g. FRI#2: second Friday of the month
            _check_value(spec, day, item)
            if not _DIGITS.fullmatch(nth) or not 1 <= int(nth) <= 5:
                raise ScheduleError(f"cron field {spec.name!r} item {item!r}: '#' needs 1-5")
            continue
        base, slash, step = item.partition("/")
        if slash and (not _DIGITS.fullmatch(step) or not 1 <= int(step) <= spec.hi):
            raise ScheduleError(
                f"cron field {spec.name!r} step {step!r} in {item!r} is out of range 1-{spec.hi}"
            )
        if base == "*" or (base == "?" and spec.name in ("day-of-month", "day-of-week")):
            continue
        # A reversed range such as 22-2 is allowed: croniter wraps it around.
        for part in base.split("-", 1):
            _check_value(spec, part, item)


def _check_value(spec: _Field, token: str, item: str) -> None:
    if _DIGITS.fullmatch(token):
        if not spec.lo <= int(token) <= spec.hi:
            raise ScheduleError(
                f"cron field {spec.name!r} value {int(token)} is out of range {spec.lo}-{spec.hi}"
            )
    elif token.upper() not in spec.names:
        what = f"a number or {spec.name_hint}" if spec.names else "a number"
        shown = token if token else item
        raise ScheduleError(f"cron field {spec.name!r} value {shown!r} is not {what}")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def fire_times(
    schedule: Schedule, tz: ZoneInfo, after: datetime, *, anchor: datetime
) -> Iterator[datetime]:
    """Yield fire instants strictly after `after`, ascending, as aware UTC whole-second datetimes.

    Cron fields are wall-clock time in `tz`. `anchor` (aware) is the instant @every counts
    from; it is truncated to whole seconds. Infinite for cron and @every.
    """
    _require_aware("after", after)
    _require_aware("anchor", anchor)
    after = after.astimezone(UTC)
    if schedule.kind == "once":
        once = schedule.once_at
        return iter([once] if once is not None and once > after else [])
    if schedule.kind == "every":
        return _every_times(schedule.every_s, anchor.astimezone(UTC).replace(microsecond=0), after)
    return _cron_times(schedule, tz, after)


def next_fire(
    schedule: Schedule, tz: ZoneInfo, after: datetime, *, anchor: datetime
) -> datetime | None:
    """The first fire instant strictly after `after` (aware UTC), or None if there is none."""
    return next(fire_times(schedule, tz, after, anchor=anchor), None)


def upcoming(
    schedule: Schedule, tz: ZoneInfo, after: datetime, *, anchor: datetime, count: int = 5
) -> list[datetime]:
    """The first `count` fire instants strictly after `after` (fewer for @once)."""
    if count < 0:
        raise ValueError("count must be >= 0")
    return list(itertools.islice(fire_times(schedule, tz, after, anchor=anchor), count))


def _every_times(every_s: int, anchor: datetime, after: datetime) -> Iterator[datetime]:
    period = timedelta(seconds=every_s)
    # First k >= 1 with anchor + k*period > after, in exact integer microseconds.
    k = 1 if after < anchor else (after - anchor) // period + 1
    while True:
        yield anchor + k * period
        k += 1


def _cron_times(schedule: Schedule, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    # croniter's own DST handling double-fires on fall-back, so iterate naive wall-clock
    # times and map each to real instants ourselves.
    local = after.astimezone(tz).replace(tzinfo=None, fold=0, microsecond=0)
    # If `after` is in the first pass of a fall-back, walls just before it recur later
    # (second pass), so start earlier by the size of any upcoming fall-back.
    start = local - _upcoming_fallback(tz, after) - timedelta(seconds=1)
    walls = croniter(schedule.cron, start, second_at_beginning=schedule.has_seconds)
    both_passes = not schedule.fixed_hours
    heap: list[datetime] = []
    last: datetime | None = None
    while True:
        wall = walls.get_next(datetime)
        first, second = _wall_instants(wall, tz)
        heapq.heappush(heap, first)
        if second is not None and both_passes:
            heapq.heappush(heap, second)
        # `first` is monotonic in wall time and no later wall maps to an earlier instant,
        # so everything up to it is final.
        while heap and heap[0] <= first:
            instant = heapq.heappop(heap)
            if instant > after and instant != last:
                last = instant
                yield instant


def _upcoming_fallback(tz: ZoneInfo, after: datetime) -> timedelta:
    """Size of the largest UTC-offset drop within 26 h after `after` (zero if none)."""
    now = after.astimezone(tz).utcoffset() or timedelta(0)
    probes = (after + timedelta(minutes=15 * i) for i in range(1, 105))
    lowest = min((p.astimezone(tz).utcoffset() or timedelta(0)) for p in probes)
    return max(timedelta(0), now - lowest)


def _wall_instants(wall: datetime, tz: ZoneInfo) -> tuple[datetime, datetime | None]:
    """Map a naive wall time to (first instant, second-pass instant or None), in UTC.

    A wall time in a spring-forward gap maps to the instant the gap ends.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) != wall:
        return _gap_end(tz, min(first, second), max(first, second)), None
    return first, (second if second != first else None)


def _gap_end(tz: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """Bisect for the first instant in (lo, hi] whose UTC offset differs from lo's."""
    before = lo.astimezone(tz).utcoffset()
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == before:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)
