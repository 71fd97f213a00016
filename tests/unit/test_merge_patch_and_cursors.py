from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import PreconditionFailed, ValidationFailed
from chalicelib.storage.pages import decode_cursor, encode_cursor
from chalicelib.tasks.service import merge_patch, parse_if_match


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("header", "version"), [('"3"', 3), ('W/"12"', 12), ("7", 7), (None, None)]
)
def test_if_match_names_a_version(header: str | None, version: int | None) -> None:
    assert parse_if_match(header) == version


def test_if_match_that_is_no_version_fails_the_precondition() -> None:
    with pytest.raises(PreconditionFailed):
        parse_if_match('"abc"')


def test_cursor_round_trip_and_partition_check() -> None:
    key = {"project_id": {"S": "acme"}, "name": {"S": "x"}, "id": {"S": "tsk_1"}}
    cursor = encode_cursor(key)
    assert cursor is not None and "acme" not in cursor
    assert decode_cursor(cursor, expect={"project_id": "acme"}) == key
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, expect={"project_id": "globex"})
    for garbage in ("!!!", "e30", encode_cursor({"a": {"B": "x"}})):
        with pytest.raises(ValidationFailed):
            decode_cursor(garbage, expect={"project_id": "acme"})
    assert encode_cursor(None) is None
    assert decode_cursor(None, expect={}) is None
