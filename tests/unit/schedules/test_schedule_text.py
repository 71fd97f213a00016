"""`describe`: schedules in English, a table of cases."""

from __future__ import annotations

import pytest

from chalicelib.schedules.model import parse_schedule
from chalicelib.schedules.text import describe

CASES = [
    # fixed times of day, days of the week and month
    ("0 9 * * MON", "At 09:00 on Monday"),
    ("0 9 * * 1", "At 09:00 on Monday"),
    ("0 9 * * MON-FRI", "At 09:00, Monday through Friday"),
    ("0 9 * * 1,3,5", "At 09:00 on Monday, Wednesday and Friday"),
    ("0 0 * * 0", "At 00:00 on Sunday"),
    ("0 0 * * 7", "At 00:00 on Sunday"),
    ("30 2 * * *", "At 02:30"),
    ("0 9,17 * * *", "At 09:00 and 17:00"),
    ("0,30 9 * * *", "At 09:00 and 09:30"),
    ("0 0,6,12,18 * * *", "At 00:00, 06:00, 12:00 and 18:00"),
    ("0 0 1 * *", "At 00:00 on day 1 of the month"),
    ("0 9 1,15 * *", "At 09:00 on days 1 and 15 of the month"),
    ("0 9 L * *", "At 09:00 on the last day of the month"),
    ("0 9 * * FRI#2", "At 09:00 on the second Friday of the month"),
    ("0 9 1 * MON", "At 09:00 on day 1 of the month or on Monday"),
    ("0 9 * JAN,JUL *", "At 09:00, in January and July"),
    ("0 0 1 */3 *", "At 00:00 on day 1 of the month, every 3 months"),
    # seconds first
    ("30 10 9 * * *", "At 09:10:30"),
    ("*/2 * * * * *", "Every 2 seconds"),
    ("* * * * * *", "Every second"),
    ("*/30 * * * * *", "Every 30 seconds"),
    ("0 */15 * * * *", "Every 15 minutes"),
    ("*/10 * 9-17 * * MON-FRI", "Every 10 seconds, between 09:00 and 17:59, Monday through Friday"),
    ("10-20 * * * * *", "Every second from 10 through 20"),
    # minutes and hours
    ("* * * * *", "Every minute"),
    ("*/5 * * * *", "Every 5 minutes"),
    ("0-30 * * * *", "Every minute from 0 through 30"),
    ("*/15 9 * * *", "Every 15 minutes, in the 09:00 hour"),
    ("0 * * * *", "Every hour"),
    ("30 * * * *", "At 30 minutes past every hour"),
    ("5,10 * * * *", "At 5 and 10 minutes past every hour"),
    ("0 */2 * * *", "Every 2 hours"),
    ("15 */2 * * *", "At 15 minutes past the hour, every 2 hours"),
    ("0 9-17 * * *", "Every hour, between 09:00 and 17:59"),
    ("0 9-17/2 * * *", "Every 2 hours between 09:00 and 17:59"),
    # aliases, @every, @once
    ("@hourly", "Every hour"),
    ("@daily", "At 00:00"),
    ("@weekly", "At 00:00 on Sunday"),
    ("@monthly", "At 00:00 on day 1 of the month"),
    ("@yearly", "At 00:00 on day 1 of the month, in January"),
    ("@every 2s", "Every 2 seconds"),
    ("@every 5m", "Every 5 minutes"),
    ("@every 1h", "Every hour"),
    ("@every 1h30m", "Every 1 hour 30 minutes"),
    ("@every 90s", "Every 1 minute 30 seconds"),
    ("@once 2027-01-01T09:00:00+01:00", "Once, at 2027-01-01T08:00:00Z"),
    # what it cannot name, it shows as written
    ("0 9 * * MON#1,FRI#2", "At 09:00 on MON#1 and FRI#2"),
]


@pytest.mark.parametrize(("schedule", "english"), CASES)
def test_describe(schedule: str, english: str) -> None:
    assert describe(parse_schedule(schedule)) == english
