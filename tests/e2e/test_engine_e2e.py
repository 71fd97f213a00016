"""The engine on `make run`: per-second firing, lateness, disabling."""

from __future__ import annotations

import time
from datetime import datetime
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

        def completed() -> list[dict[str, Any]]:
            jobs = client.get(runs_path).json()["jobs"]
            done = [
                j
                for j in jobs
                if j["status"] == "complete" and parse(j["scheduled_for"]).timestamp() >= settled
            ]
            return done if len(done) >= 3 else []

        done = wait_for(completed)
        for job in done:
            assert parse(job["scheduled_for"]).second % 2 == 0
            lateness = (parse(job["started_at"]) - parse(job["scheduled_for"])).total_seconds()
            assert 0 <= lateness < 1.0, job
            assert job["result"] == {"n": 1}

        client.patch(f"{TASKS}/{task['id']}", json={"enabled": False})
        disabled_at = time.time()
        time.sleep(4)
        jobs = client.get(runs_path).json()["jobs"]
        started_after = [
            j
            for j in jobs
            if j["started_at"] and parse(j["started_at"]).timestamp() > disabled_at + 1
        ]
        assert started_after == []
        # Firings made ahead (within the lookahead) end cancelled when they come up.
        assert {j["status"] for j in jobs} <= {"complete", "cancelled", "scheduled", "queued"}
