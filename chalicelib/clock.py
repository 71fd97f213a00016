"""Time and identifiers, injected so that every policy is testable without sleeps."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told: for tests, benchmarks and replays of
    past instants (the engine never reads time any other way)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


class IdFactory(Protocol):
    def new_id(self, prefix: str) -> str:
        """A new unique identifier such as `tsk_01j9...`."""
        ...


class SortableIds:
    """ULID-style ids: 48 bits of milliseconds then 80 random bits, Crockford base32.

    Ids made later sort later, which keeps DynamoDB keys spread (the random
    part) while listings by id stay roughly chronological.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def new_id(self, prefix: str) -> str:
        ms = int(self._clock.now().timestamp() * 1000)
        return f"{prefix}_{_base32(ms, 10)}{_base32(secrets.randbits(80), 16)}"


def to_ms(instant: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(instant.timestamp() * 1000)


def from_ms(epoch_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
