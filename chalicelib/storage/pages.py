"""Cursor pagination over DynamoDB Queries, with a bound on the work per request."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from chalicelib.errors import ValidationFailed

M = TypeVar("M", bound=Model)
T = TypeVar("T")

#: Pages of a filtered Query read for one API page before answering with what
#: was found and a cursor: bounds a request's cost whatever the filter.
MAX_PAGES_PER_REQUEST = 8


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Opaque cursor of a DynamoDB LastEvaluatedKey (None at the end)."""
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, *, expect: dict[str, str], location: str = "query.cursor"
) -> dict[str, Any] | None:
    """The LastEvaluatedKey inside a cursor, checked against the Query it resumes.

    `expect` maps key attributes to the values they must hold (the caller's
    project, say), so a cursor cannot move a Query into another partition.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed.at(location, "is not a cursor from this list", cursor) from None
    well_formed = isinstance(key, dict) and all(
        isinstance(name, str)
        and isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("S", "N")
        and isinstance(next(iter(value.values())), str)
        for name, value in key.items()
    )
    if not well_formed or any(
        key.get(name, {}).get("S") != value for name, value in expect.items()
    ):
        raise ValidationFailed.at(location, "is not a cursor from this list", cursor)
    return cast(dict[str, Any], key)


def read_page(model: type[M], results: ResultIterator[M], limit: int) -> Page[M]:
    """Read up to `limit` items from a Query built with `page_size=limit`.

    Reads at most MAX_PAGES_PER_REQUEST DynamoDB pages; a filtered Query that
    matches little answers with fewer items and a cursor rather than reading on.
    """
    pages = results.page_iter
    items: list[M] = []
    for _ in range(MAX_PAGES_PER_REQUEST):
        pages.page_size = limit - len(items)
        try:
            page = next(pages)
        except StopIteration:
            break
        items.extend(model.from_raw_data(raw) for raw in page.get("Items", []))
        if pages.last_evaluated_key is None or len(items) >= limit:
            break
    return Page(items, encode_cursor(pages.last_evaluated_key))
