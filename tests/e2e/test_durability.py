"""Nothing the local stack acknowledged is lost when the whole stack is killed
with SIGKILL right after its answers: tasks, jobs, decisions and tokens all
come back, and every accepted job still ends in a terminal state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import LocalStack
from tests.e2e.test_queue_e2e import HITL, job, result, submit

TASKS = "/v1/scheduled-tasks"
ADMIN_TOKENS = "/v1/admin/tokens"


def made(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json() if answer.content else {}
    return body


def test_every_acknowledged_write_survives_sigkill_of_the_whole_stack(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    stack = make_stack(state_dir=state_dir)
    with stack.client() as admin:
        member_secret = made(
            admin.post(ADMIN_TOKENS, json={"project_id": "shop", "name": "bob"}), 201
        )["token"]
        revoked = made(admin.post(ADMIN_TOKENS, json={"project_id": "shop", "name": "gone"}), 201)
        made(admin.delete(f"{ADMIN_TOKENS}/{revoked['id']}"), 204)

    with stack.client(member_secret) as member:
        tasks = [
            made(
                member.post(
                    TASKS,
                    json={"name": f"kept-{i}", "schedule": "0 0 1 1 *", "action": "echo"},
                ),
                201,
            )
            for i in range(20)
        ]
        made(member.patch(f"{TASKS}/{tasks[0]['id']}", json={"description": "changed"}), 200)
        made(member.delete(f"{TASKS}/{tasks[1]['id']}"), 204)
        jobs = [submit(member, args={"i": i}) for i in range(20)]
        approved, rejected, pending = (
            submit(member, requires_approval=True, args={"held": n}) for n in range(3)
        )
        made(member.post(f"{HITL}/{approved['approval_request_id']}/approve", json={}), 200)
        made(member.post(f"{HITL}/{rejected['approval_request_id']}/reject", json={}), 200)
        deferred = submit(member, defer_by=3600)

    stack.kill()  # right after the last answer: no stop, no chance to save
    again = make_stack(state_dir=state_dir)

    with again.client(member_secret) as member:
        listed = made(member.get(TASKS, params={"limit": 100}), 200)["scheduled_tasks"]
        assert sorted(t["id"] for t in listed) == sorted(t["id"] for t in tasks[:1] + tasks[2:])
        assert made(member.get(f"{TASKS}/{tasks[0]['id']}"), 200)["description"] == "changed"
        assert member.get(f"{TASKS}/{tasks[1]['id']}").status_code == 404

        for i, accepted in enumerate(jobs):
            assert result(member, accepted["id"]) == {
                "status": "complete",
                "result": {"i": i},
                "error": None,
            }
        assert made(member.get(f"{HITL}/{approved['approval_request_id']}"), 200)["status"] == (
            "approved"
        )
        assert result(member, approved["id"])["status"] == "complete"
        assert made(member.get(f"{HITL}/{rejected['approval_request_id']}"), 200)["status"] == (
            "rejected"
        )
        assert result(member, rejected["id"])["status"] == "rejected"
        assert made(member.get(f"{HITL}/{pending['approval_request_id']}"), 200)["status"] == (
            "pending"
        )
        assert job(member, pending["id"])["status"] == "awaiting_approval"
        assert deferred["status"] == "scheduled"
        # Waiting for its hour, as answered (its view adds its attempts: none yet).
        assert job(member, deferred["id"]) == {**deferred, "attempts": []}

    with again.client(revoked["token"]) as gone:
        assert gone.get(TASKS).status_code == 401
