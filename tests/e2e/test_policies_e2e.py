"""Task policies on `make run` over HTTP: `on_overlap` skip/queue/terminate,
retries and timeouts end as DESIGN §4 and §5 say.

The stack runs on real time, so these tests wait for runs to happen (bounded
polls); they assert what the runs recorded, never how long a wait took.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalStack, free_port
from tests.e2e.test_engine_e2e import TASKS, parse, wait_for

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_policies_e2e")

YEARLY = "0 0 1 1 *"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    stack = LocalStack(tmp_path_factory.mktemp("policies"), free_port())
    stack.start()
    try:
        with stack.client() as http:
            yield http
    finally:
        # Runs of these tests may still sleep; a graceful stop would wait its
        # grace for them (tests/e2e/test_local_stack.py covers stopping).
        stack.kill()


def create(client: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = client.post(TASKS, json=spec)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def runs(client: httpx.Client, task: dict[str, Any]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.get(f"{TASKS}/{task['id']}/runs?limit=200").json()["jobs"]
    return jobs


def stop(client: httpx.Client, task: dict[str, Any]) -> None:
    client.patch(f"{TASKS}/{task['id']}", json={"enabled": False})


def span(job: dict[str, Any]) -> tuple[datetime, datetime]:
    return parse(job["started_at"]), parse(job["finished_at"])


def overlapping(jobs: list[dict[str, Any]]) -> bool:
    ran = sorted(span(j) for j in jobs if j["started_at"] and j["finished_at"])
    return any(later[0] < earlier[1] for earlier, later in pairwise(ran))


def test_on_overlap_skip_records_skipped_firings_and_never_overlaps(
    client: httpx.Client,
) -> None:
    task = create(
        client,
        name="skip",
        schedule="*/2 * * * * *",
        action="sleep",
        args={"seconds": 3},
        on_overlap="skip",
    )
    wait_for(
        lambda: (
            sum(j["status"] == "complete" for j in runs(client, task)) >= 2
            and any(j["status"] == "skipped" for j in runs(client, task))
        ),
        timeout_s=40,
    )
    stop(client, task)
    jobs = runs(client, task)
    skipped = [j for j in jobs if j["status"] == "skipped"]
    assert all(j["started_at"] is None for j in skipped)
    assert all(j["error"] == "skipped: parallelism reached" for j in skipped)
    assert not overlapping(jobs)


def test_on_overlap_queue_runs_every_firing_one_after_another(client: httpx.Client) -> None:
    task = create(
        client,
        name="queue",
        schedule="*/2 * * * * *",
        action="sleep",
        args={"seconds": 3},
        on_overlap="queue",
    )
    wait_for(lambda: sum(j["status"] == "complete" for j in runs(client, task)) >= 3, timeout_s=40)
    stop(client, task)
    jobs = runs(client, task)
    assert not any(j["status"] == "skipped" for j in jobs)
    done = [j for j in jobs if j["status"] == "complete"]
    assert not overlapping(done)
    # A firing that met a running one waited for the slot: it started late.
    waited = [j for j in done if (parse(j["started_at"]) - parse(j["scheduled_for"])).seconds >= 1]
    assert waited
    # Waiting firings take the slot oldest first: none is starved by newer ones.
    by_start = [j["scheduled_for"] for j in sorted(done, key=lambda j: j["started_at"])]
    assert by_start == sorted(by_start)


def test_on_overlap_terminate_cancels_the_running_one(client: httpx.Client) -> None:
    task = create(
        client,
        name="terminate",
        schedule="*/2 * * * * *",
        action="sleep",
        args={"seconds": 30},
        on_overlap="terminate",
    )
    wait_for(lambda: sum(j["status"] == "cancelled" for j in runs(client, task)) >= 2, timeout_s=40)
    stop(client, task)
    cancelled = [j for j in runs(client, task) if j["status"] == "cancelled" and j["started_at"]]
    assert len(cancelled) >= 2
    for job in cancelled:
        started, finished = span(job)
        # Stopped by a later firing, before its 30 s sleep ran out.
        assert (finished - started).total_seconds() < 30, job
        assert job["result"] == {"slept": False}


def test_retries_re_run_the_same_job_until_attempts_run_out(client: httpx.Client) -> None:
    task = create(
        client,
        name="retries",
        schedule=YEARLY,
        action="fail",
        args={"message": "boom"},
        retry_attempts=2,
        retry_delay=1,
        retry_backoff="linear",
    )
    job = client.post(f"{TASKS}/{task['id']}/trigger").json()
    ended = wait_for(
        lambda: next((j for j in runs(client, task) if j["status"] == "failed"), None),
        timeout_s=40,
    )
    assert ended["id"] == job["id"]
    assert ended["attempt"] == 3
    assert ended["max_attempts"] == 3
    assert ended["error"] == "boom"
    # Retry delays 1 s then 2 s (linear) came between the first enqueue and the end.
    assert (parse(ended["finished_at"]) - parse(job["scheduled_for"])).total_seconds() >= 3


def test_a_run_past_its_timeout_fails_with_error_timeout(client: httpx.Client) -> None:
    task = create(
        client,
        name="timeout",
        schedule=YEARLY,
        action="sleep",
        args={"seconds": 20},
        timeout=1,
    )
    client.post(f"{TASKS}/{task['id']}/trigger")
    ended = wait_for(
        lambda: next((j for j in runs(client, task) if j["status"] == "failed"), None),
        timeout_s=30,
    )
    assert ended["error"] == "timeout"
    started, finished = span(ended)
    # It ran for its whole timeout and was stopped before its 20 s sleep ended.
    assert 1 <= (finished - started).total_seconds() < 20
