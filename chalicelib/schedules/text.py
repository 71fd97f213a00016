"""Schedules in plain English: `0 9 * * MON` → "At 09:00 on Monday".

A pure function over a parsed `Schedule` (so only valid schedules reach it),
for `GET /v1/schedules/preview` and the console's forms. It covers what
people write (fixed times, steps, ranges, lists, names, `L`, `#`) and falls
back to naming a field's raw text rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.schedules.model import Schedule

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_NUMBERS = {name[:3].upper(): i for i, name in enumerate(_DAY_NAMES)}
_MONTH_NUMBERS = {name[:3].upper(): i + 1 for i, name in enumerate(_MONTH_NAMES)}
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
#: Most fixed times of day listed one by one ("At 09:00, 12:00 and 17:00").
_MAX_LISTED_TIMES = 6


def describe(schedule: Schedule) -> str:
    """English for a parsed schedule, starting with a capital letter."""
    if schedule.kind == "once":
        assert schedule.once_at is not None
        return f"Once, at {schedule.once_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    if schedule.kind == "every":
        return "Every " + _duration(schedule.every_s)
    return describe_cron(schedule.cron)


def describe_cron(expr: str) -> str:
    """English for a valid 5-field or (seconds-first) 6-field cron expression."""
    fields = expr.split()
    second = fields[0] if len(fields) == 6 else "0"
    minute, hour, dom, month, dow = fields[-5:]
    parts = [_time_of_day(second, minute, hour)]
    days = [d for d in (_day_of_month(dom), _day_of_week(dow)) if d]
    if days:
        # Vixie cron (and croniter): a day matching either restricted field fires.
        parts.append(" or ".join(days))
    if month != "*":
        parts.append(_month(month))
    text = parts[0]
    for part in parts[1:]:
        text += (" " if part.startswith("on ") else ", ") + part
    return text


# -- time of day -------------------------------------------------------------


def _time_of_day(second: str, minute: str, hour: str) -> str:
    if _plain(second) and _plain_list(minute) and _plain_list(hour):
        times = sorted((int(h), int(m)) for h in hour.split(",") for m in minute.split(","))
        if len(times) <= _MAX_LISTED_TIMES:
            return "At " + _join([_clock(h, m, int(second)) for h, m in times])
    if second != "0":
        lead = _capital(_unit_phrase(second, "second"))
        rest = [p for p in (_minute_qualifier(minute), _hour_qualifier(hour)) if p]
        return ", ".join([lead, *rest])
    if not _plain_list(minute):
        lead = _capital(_unit_phrase(minute, "minute"))
        hours = _hour_qualifier(hour)
        return f"{lead}, {hours}" if hours else lead
    if not _plain(minute):
        lead = f"At {_listing(minute, str)} minutes past"
        return f"{lead} every hour" if hour == "*" else f"{lead} the hour, {_hour_qualifier(hour)}"
    # One fixed minute (and second 0), in hours that are not a short plain list.
    at = int(minute)
    if hour == "*":
        return "Every hour" if at == 0 else f"At {at} minutes past every hour"
    qualifier = _hour_qualifier(hour)
    if at == 0:
        return _capital(qualifier) if qualifier.startswith("every ") else f"Every hour, {qualifier}"
    return f"At {at} minutes past the hour, {qualifier}"


def _minute_qualifier(minute: str) -> str:
    if minute == "*":
        return ""
    if _plain_list(minute):
        return f"at {_plural(minute, 'minute')} {_listing(minute, str)} past the hour"
    return _unit_phrase(minute, "minute")


def _hour_qualifier(hour: str) -> str:
    if hour == "*":
        return ""
    if hour.startswith("*/"):
        return f"every {hour[2:]} hours"
    base, _, step = hour.partition("/")
    if "-" in base and "," not in base and base.replace("-", "").isdigit():
        lo, hi = (int(h) for h in base.split("-"))
        span = f"{_clock(lo, 0)} and {_clock(hi, 59)}"
        return f"every {step} hours between {span}" if step else f"between {span}"
    if _plain_list(hour):
        return "in the " + _join([_clock(int(h), 0) for h in hour.split(",")]) + " hour"
    return f"in hours {hour}"


def _unit_phrase(field: str, unit: str) -> str:
    """`*` → every second; `*/5` → every 5 seconds; `10-20` → every second from 10
    through 20; `5,10` → at seconds 5 and 10; `10/5` → every 5 seconds from 10."""
    base, _, step = field.partition("/")
    every = f"every {step} {unit}s" if step else f"every {unit}"
    if base == "*":
        return every
    if "-" in base and "," not in base:
        lo, hi = base.split("-")
        return f"{every} from {lo} through {hi}"
    if step:
        return f"{every} from {base}"
    return f"at {_plural(field, unit)} {_listing(field, str)}"


# -- days and months ---------------------------------------------------------


def _day_of_month(dom: str) -> str:
    if dom in ("*", "?"):
        return ""
    if dom.upper() == "L":
        return "on the last day of the month"
    if dom.startswith("*/"):
        return f"every {dom[2:]} days of the month"
    if "-" in dom and "," not in dom and "/" not in dom:
        lo, hi = dom.split("-")
        return f"on days {lo} through {hi} of the month"
    if _plain_list(dom):
        return f"on {_plural(dom, 'day')} {_listing(dom, str)} of the month"
    return f"on days {dom} of the month"


def _day_of_week(dow: str) -> str:
    if dow in ("*", "?"):
        return ""
    if "#" in dow and "," not in dow:
        day, _, nth = dow.partition("#")
        return f"on the {_ORDINALS[int(nth) - 1]} {_day_name(day)} of the month"
    if "-" in dow and "," not in dow and "/" not in dow:
        lo, hi = dow.split("-")
        return f"{_day_name(lo)} through {_day_name(hi)}"
    if "/" not in dow:
        return "on " + _listing(dow, _day_name)
    return f"on days of the week {dow}"


def _month(month: str) -> str:
    if month.startswith("*/"):
        return f"every {month[2:]} months"
    if "/" in month:
        return f"in months {month}"
    return "in " + _listing(month, _month_name)


def _day_name(token: str) -> str:
    number = int(token) if token.isdigit() else _DAY_NUMBERS[token.upper()]
    return _DAY_NAMES[number % 7]  # 0 and 7 are both Sunday


def _month_name(token: str) -> str:
    number = int(token) if token.isdigit() else _MONTH_NUMBERS[token.upper()]
    return _MONTH_NAMES[number - 1]


# -- small helpers -----------------------------------------------------------


def _duration(total_s: int) -> str:
    hours, rest = divmod(total_s, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (seconds, "second")]
    present = [(n, unit) for n, unit in parts if n]
    if len(present) == 1 and present[0][0] == 1:
        return present[0][1]
    return " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in present)


def _clock(hour: int, minute: int, second: int = 0) -> str:
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second else "")


def _plain(field: str) -> bool:
    return field.isdigit()


def _plain_list(field: str) -> bool:
    return all(item.isdigit() for item in field.split(","))


def _plural(field: str, unit: str) -> str:
    return unit + ("s" if "," in field else "")


def _listing(field: str, name: Callable[[str], str]) -> str:
    """`1,3,5` → "Monday, Wednesday and Friday" with `name` mapping each item;
    an item it cannot name (`MON#1`, `1-5/2`) is shown as written."""
    items = []
    for item in field.split(","):
        try:
            if "-" in item and "/" not in item:
                lo, hi = item.split("-")
                items.append(f"{name(lo)} through {name(hi)}")
            else:
                items.append(name(item))
        except (KeyError, ValueError, IndexError):
            items.append(item)
    return _join(items)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
