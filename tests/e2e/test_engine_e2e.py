"""The engine on `make run`: per-second firing and disabling."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise
from typing import Any

from tests.e2e.conftest import LocalStack

TASKS = "/v1/scheduled-tasks"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_for(check: Any, timeout_s: float = 30) -> Any:
    """Poll the API until `check()` gives a truthy value (the stack runs on real time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("condition not met in time")


def test_a_per_second_schedule_fires_on_its_second_and_stops_when_disabled(
    stack: LocalStack,
) -> None:
    with stack.client() as client:
        task = client.post(
            TASKS,
            json={
                "name": "every2",
                "schedule": "*/2 * * * * *",
                "action": "echo",
                "args": {"n": 1},
            },
        ).json()
        runs_path = f"{TASKS}/{task['id']}/runs?limit=50"

        # The create call fires what is due within the lookahead itself, so
        # even the first firings are on their second.
        settled = parse(task["created_at"]).timestamp()

        def first_three_complete() -> list[dict[str, Any]]:
            jobs = client.get(runs_path).json()["jobs"]
            fired = sorted(
                (j for j in jobs if parse(j["scheduled_for"]).timestamp() >= settled),
                key=lambda j: j["scheduled_for"],
            )[:3]
            ended = len(fired) == 3 and all(j["status"] == "complete" for j in fired)
            return fired if ended else []

        done = wait_for(first_three_complete)
        fire_times = [parse(j["scheduled_for"]) for j in done]
        for job, fire_time in zip(done, fire_times, strict=True):
            assert fire_time.second % 2 == 0
            assert parse(job["started_at"]) >= fire_time, job  # never early (DESIGN §2.8)
            assert job["result"] == {"n": 1}
        # Every two seconds, none missed and none doubled. How late a run starts
        # is measured by `python -m bench.lateness`, not asserted here.
        assert {(b - a).total_seconds() for a, b in pairwise(fire_times)} == {2.0}

        disabled = client.patch(f"{TASKS}/{task['id']}", json={"enabled": False}).json()
        assert disabled["next_run_at"] is None
        disabled_at = parse(disabled["updated_at"])

        def all_ended() -> list[dict[str, Any]]:
            jobs: list[dict[str, Any]] = client.get(runs_path).json()["jobs"]
            return jobs if all(j["status"] in ("complete", "cancelled") for j in jobs) else []

        # Firings made ahead (within the lookahead) end cancelled when they come up.
        for job in wait_for(all_ended):
            if parse(job["scheduled_for"]) > disabled_at:
                assert job["status"] == "cancelled", job
                assert job["started_at"] is None, job
