"""Job keys (DESIGN §5 "in the same project"): a user's `job_id` is stored as
`<project>/<job_id>`, which no Tickwork-made id can equal, and nothing that
parses Tickwork's ids mistakes such a key for one of them."""

from __future__ import annotations

import re

import pytest

from chalicelib.approvals.model import approval_request_id
from chalicelib.engine.executor import _fire_order, _lane
from chalicelib.jobs.model import (
    is_service_job_id,
    is_user_job_key,
    job_keys,
    public_job_id,
    user_job_key,
)
from chalicelib.jobs.sqs import JobMessage

FIRING = "tsk_01hx:1798794000000"


@pytest.mark.parametrize(
    ("project", "shown", "keys"),
    [
        ("acme", "nightly", ("acme/nightly", "nightly")),
        ("acme", "a:b.c", ("acme/a:b.c", "a:b.c")),
        ("acme", "job_01hx", ("job_01hx", "acme/job_01hx")),
        ("acme", FIRING, (FIRING, f"acme/{FIRING}")),
        ("acme", f"{FIRING}:backfill", (f"{FIRING}:backfill", f"acme/{FIRING}:backfill")),
        ("acme", "acme/nightly", ()),  # a key is no public id
        ("acme", "", ()),
    ],
)
def test_a_shown_id_is_looked_up_under_its_likeliest_key_first(
    project: str, shown: str, keys: tuple[str, ...]
) -> None:
    assert job_keys(project, shown) == keys


def test_the_public_id_is_the_user_id_or_the_key_itself() -> None:
    assert public_job_id(user_job_key("acme", "a:b")) == "a:b"
    assert public_job_id(FIRING) == FIRING
    assert public_job_id("legacy-id") == "legacy-id"
    assert is_user_job_key("acme/a") and not is_user_job_key(FIRING)


def test_a_user_key_is_not_read_as_a_service_run() -> None:
    assert is_service_job_id(f"{FIRING}:0.1")
    assert not is_service_job_id(user_job_key("acme", "a:1:0.1"))


def test_a_user_key_with_colons_has_its_own_batch_lane() -> None:
    def lane(job_id: str) -> str:
        return _lane(JobMessage(job_id).body())

    assert lane(f"{FIRING}") == lane("tsk_01hx:1798794010000") == "tsk_01hx"
    assert lane("default/a:1") == "default/a:1"
    assert lane("default/a:1") != lane("default/a:2")
    assert _fire_order(JobMessage("default/a:1798794000000").body()) == (
        0,
        "default/a:1798794000000",
    )


def test_approval_request_ids_are_one_url_segment_and_one_per_job() -> None:
    keys = ["acme/a", "acme/a:b", "a", FIRING, "globex/a", "job_01hx"]
    ids = [approval_request_id(key) for key in keys]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_.:~-]+", i) for i in ids)
    assert approval_request_id("acme/a:b") == "apr_acme~a:b"
