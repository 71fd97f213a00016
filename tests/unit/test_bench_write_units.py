"""The sizing rules bench.write_units charges DynamoDB requests by."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bench.write_units import (
    Index,
    TableShape,
    index_write_units,
    item_size,
    number_size,
    projected,
    read_units,
    shapes,
    write_cost,
    write_units,
)

BY_STATUS = Index("by_status", ("status",), "INCLUDE", ("name",))
BY_OWNER = Index("by_owner", ("owner", "created"), "ALL")
KEYS = Index("by_kind", ("kind",), "KEYS_ONLY")
JOBS = TableShape("jobs", "tickwork-t-jobs", ("id",), (BY_STATUS, BY_OWNER, KEYS))


def s(text: str) -> dict[str, Any]:
    return {"S": text}


def test_a_string_costs_its_name_and_value_in_utf8_bytes() -> None:
    assert item_size({"név": s("héllo")}) == 4 + 6


@pytest.mark.parametrize(
    ("number", "size"),
    [("7", 2), ("12345", 4), ("123456", 4), ("1000", 2), ("-0.00120", 2), ("0", 2)],
)
def test_a_number_costs_a_byte_per_two_significant_digits_and_one(number: str, size: int) -> None:
    assert number_size(number) == size
    assert item_size({"n": {"N": number}}) == 1 + size


def test_a_map_costs_three_bytes_and_a_byte_per_element_with_their_names() -> None:
    item = {"m": {"M": {"a": s("xy"), "b": {"BOOL": True}}}}
    assert item_size(item) == 1 + 3 + (1 + 1 + 2) + (1 + 1 + 1)
    assert item_size({"m": {"M": {}}}) == 1 + 3


def test_a_list_costs_three_bytes_and_a_byte_per_element() -> None:
    assert item_size({"l": {"L": [s("ab"), {"N": "7"}, {"NULL": True}]}}) == 1 + 3 + 3 + 3 + 2


def test_a_set_costs_the_sum_of_its_elements() -> None:
    assert item_size({"ss": {"SS": ["a", "bcd"]}}) == 2 + 4
    assert item_size({"ns": {"NS": ["1", "22", "333"]}}) == 2 + 2 + 2 + 3
    wire = [base64.b64encode(b"\x00\x01\x02").decode(), base64.b64encode(b"\xff").decode()]
    assert item_size({"bs": {"BS": wire}}) == 2 + 4


def test_binary_costs_its_raw_bytes_as_sent_or_as_read() -> None:
    assert item_size({"b": {"B": base64.b64encode(b"12345").decode()}}) == 1 + 5
    assert item_size({"b": {"B": b"12345"}}) == 1 + 5


def test_writes_round_up_per_kilobyte_and_reads_per_four() -> None:
    assert [write_units(n) for n in (0, 1, 1024, 1025, 10_240)] == [1, 1, 1, 2, 10]
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(0, consistent=False) == 0.5  # an absent item or empty page: the minimum


def job(**extra: Any) -> dict[str, Any]:
    return {"id": s("job_1"), "name": s("nightly"), **{k: s(v) for k, v in extra.items()}}


def test_an_include_projection_holds_both_keys_and_its_attributes_only() -> None:
    item = job(status="queued", log="x" * 2000)
    assert projected(item, JOBS.keys, BY_STATUS) == {
        "id": s("job_1"),
        "status": s("queued"),
        "name": s("nightly"),
    }
    assert projected(item, JOBS.keys, KEYS) is None  # no `kind`: not in the sparse index


def test_a_write_of_what_an_index_does_not_hold_costs_nothing_in_it() -> None:
    before = job(status="active", owner="ann", created="1", log="")
    after = job(status="active", owner="ann", created="1", log="x" * 1500)
    cost = write_cost(before, after, JOBS)
    assert cost.table == 2  # the larger image
    assert cost.indexes == {"by_owner": 2}  # ALL holds the log; INCLUDE does not


def test_a_change_of_an_index_key_is_a_delete_and_a_put() -> None:
    before = job(status="queued", log="x" * 1500)
    after = job(status="active", log="x" * 1500)
    cost = write_cost(before, after, JOBS)
    assert cost.indexes == {"by_status": 1 + 1}
    old, new = (projected(i, JOBS.keys, BY_OWNER) for i in (before, after))
    assert old is None and new is None


def test_entering_and_leaving_a_sparse_index_is_a_put_and_a_delete() -> None:
    small = job(status="queued")
    big = job(status="queued", owner="ann", created="1", log="x" * 3000)
    assert write_cost(small, big, JOBS).indexes["by_owner"] == 3  # put of the new image
    assert write_cost(big, small, JOBS).indexes["by_owner"] == 3  # delete of the old one
    assert index_write_units(None, None, BY_OWNER.keys) == 0


def test_an_update_of_projected_attributes_rewrites_the_entry() -> None:
    before = job(status="queued")
    after = {**job(status="queued"), "name": s("weekly")}
    assert write_cost(before, after, JOBS).indexes == {"by_status": 1}


def test_a_new_item_and_a_delete_cost_each_index_that_holds_it() -> None:
    item = job(status="queued", owner="ann", created="1", kind="cron")
    assert write_cost(None, item, JOBS).indexes == {"by_status": 1, "by_owner": 1, "by_kind": 1}
    assert write_cost(item, None, JOBS) == write_cost(None, item, JOBS)


def test_a_transaction_costs_twice_on_the_table_and_in_the_indexes() -> None:
    item = job(status="queued", log="x" * 1100)
    single, double = write_cost(None, item, JOBS), write_cost(None, item, JOBS, transactional=True)
    assert (single.table, single.indexes) == (2, {"by_status": 1})
    assert (double.table, double.indexes, double.total) == (4, {"by_status": 2}, 6)


def test_a_failed_conditional_write_costs_the_item_it_found() -> None:
    item = job(status="queued", log="x" * 1100)
    assert write_cost(item, item, JOBS).total == 2
    assert write_cost(None, None, JOBS).total == 1


def test_the_shapes_are_those_of_the_stage_tables() -> None:
    found = {shape.logical: shape for shape in shapes("t").values()}
    assert found["jobs"].name == "tickwork-t-jobs"
    assert found["jobs"].keys == ("id",)
    assert found["metrics"].keys == ("pk", "sk")
    include = [i for i in found["jobs"].indexes if i.projection == "INCLUDE"]
    assert include and all(i.include for i in include)
