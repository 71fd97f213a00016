"""Human in the loop through `chalice.test.Client` on moto (DESIGN §5; §7 routes
6, 7, 8, 10): holding, approving, rejecting, expiring, deciding twice, isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib import wiring as services_module
from chalicelib.actions import Registry
from chalicelib.settings import Settings
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME, Pipeline

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"


def held(api: Api, token: Token, **fields: Any) -> dict[str, Any]:
    """Submit a `record` job that requires approval; returns the job (202)."""
    answer = api.post(
        JOBS,
        token=token,
        json_body={"action": "record", "requires_approval": True, **fields},
    )
    assert answer.status_code == 202, answer.body
    job: dict[str, Any] = body(answer)
    return job


def test_an_approved_job_is_queued_and_runs(
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme", name="alice")
    job = held(api, member, args={"n": 1})
    assert job["status"] == "awaiting_approval"
    assert job["requires_approval"] is True
    request_id = job["approval_request_id"]

    pending = body(api.get(HITL, token=member))["requests"]
    assert [(r["id"], r["job_id"], r["action"], r["args"]) for r in pending] == [
        (request_id, job["id"], "record", {"n": 1})
    ]
    request = body(api.get(f"{HITL}/{request_id}", token=member))
    assert request["status"] == "pending"
    assert request["requested_at"] == "2027-01-04T09:00:00Z"
    assert request["expires_at"] == "2027-01-05T09:00:00Z"  # 24 h by default
    depth = body(api.get("/v1/queue/depth", token=member))
    assert depth["awaiting_approval"] == 1

    pipeline.deliver()
    assert calls.seen == []  # nothing runs while it waits

    approved = api.post(
        f"{HITL}/{request_id}/approve", token=member, json_body={"comment": "looks fine"}
    )
    assert approved.status_code == 200
    decided = body(approved)
    assert decided["status"] == "approved"
    assert decided["decided_by"] == f"alice ({member.id})"
    assert decided["decided_at"] == "2027-01-04T09:00:00Z"
    assert decided["reason"] == "looks fine"
    assert body(api.get(f"{JOBS}/{job['id']}", token=member))["status"] == "queued"

    pipeline.deliver(times=2)
    assert calls.seen == [{"job": job["id"], "n": 1}]
    done = body(api.get(f"{JOBS}/{job['id']}", token=member))
    assert (done["status"], done["result"]) == ("complete", {"n": 1})
    assert body(api.get(HITL, token=member))["requests"] == []
    listed = body(api.get(f"{HITL}?status=approved", token=member))["requests"]
    assert [r["id"] for r in listed] == [request_id]


def test_a_rejected_job_ends_rejected_with_the_reason(
    pipeline: Pipeline, api: Api, calls: Calls, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme", name="bob")
    job = held(api, member)
    request_id = job["approval_request_id"]
    rejected = body(
        api.post(f"{HITL}/{request_id}/reject", token=member, json_body={"reason": "not today"})
    )
    assert (rejected["status"], rejected["reason"]) == ("rejected", "not today")
    assert rejected["decided_by"] == f"bob ({member.id})"
    ended = body(api.get(f"{JOBS}/{job['id']}", token=member))
    assert (ended["status"], ended["error"]) == ("rejected", "rejected: not today")
    pipeline.deliver()
    assert calls.seen == []


@pytest.mark.parametrize(("first", "second"), [("approve", "reject"), ("reject", "approve")])
def test_a_request_is_decided_once(
    api: Api, make_token: Callable[..., Token], first: str, second: str
) -> None:
    member = make_token("acme")
    request_id = held(api, member)["approval_request_id"]
    assert api.post(f"{HITL}/{request_id}/{first}", token=member, json_body={}).status_code == 200
    for decision in (first, second):
        again = api.post(f"{HITL}/{request_id}/{decision}", token=member, json_body={})
        assert again.status_code == 409
        assert "already decided" in body(again)["detail"]


def test_an_undecided_request_expires_and_its_job_is_rejected(
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    job = held(api, member)
    request_id = job["approval_request_id"]
    clock.advance(24 * 3600 - 1)
    pipeline.tick()
    assert body(api.get(f"{HITL}/{request_id}", token=member))["status"] == "pending"
    clock.advance(1)
    pipeline.tick()
    expired = body(api.get(f"{HITL}/{request_id}", token=member))
    assert (expired["status"], expired["reason"], expired["decided_by"]) == (
        "expired",
        "expired",
        None,
    )
    ended = body(api.get(f"{JOBS}/{job['id']}", token=member))
    assert (ended["status"], ended["error"]) == ("rejected", "rejected: approval expired")
    late = api.post(f"{HITL}/{request_id}/approve", token=member, json_body={})
    assert late.status_code == 409


def test_approving_after_the_deadline_but_before_the_tick_is_refused(
    api: Api, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    job = held(api, member)
    clock.advance(24 * 3600)
    late = api.post(f"{HITL}/{job['approval_request_id']}/approve", token=member, json_body={})
    assert late.status_code == 409
    assert body(api.get(f"{JOBS}/{job['id']}", token=member))["status"] == "rejected"


def test_cancelling_a_held_job_withdraws_its_request(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme", name="carol")
    job = held(api, member)
    cancelled = body(api.post(f"{JOBS}/{job['id']}/cancel", token=member))
    assert cancelled["status"] == "cancelled"
    request = body(api.get(f"{HITL}/{job['approval_request_id']}", token=member))
    assert (request["status"], request["reason"]) == ("rejected", "job cancelled")
    assert request["decided_by"] == f"carol ({member.id})"


def test_requests_of_another_project_answer_404(api: Api, make_token: Callable[..., Token]) -> None:
    member = make_token("acme")
    request_id = held(api, member)["approval_request_id"]
    outsider = make_token("globex")
    assert api.get(f"{HITL}/{request_id}", token=outsider).status_code == 404
    for decision in ("approve", "reject"):
        refused = api.post(f"{HITL}/{request_id}/{decision}", token=outsider, json_body={})
        assert refused.status_code == 404
    assert body(api.get(HITL, token=outsider))["requests"] == []
    assert body(api.get(f"{HITL}/{request_id}", token=member))["status"] == "pending"
    assert api.get(f"{HITL}?status=maybe", token=member).status_code == 422
    assert api.get(HITL).status_code == 401


def test_a_task_that_requires_approval_holds_each_firing_when_it_comes_up(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    member = make_token("acme")
    task = make_task(requires_approval=True, args={"n": 5})
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    assert calls.seen == []
    [request] = body(api.get(HITL, token=member))["requests"]
    job = body(api.get(f"{JOBS}/{request['job_id']}", token=member))
    assert (job["task_id"], job["status"], job["trigger"]) == (task.id, "awaiting_approval", "cron")
    api.post(f"{HITL}/{request['id']}/approve", token=member, json_body={})
    pipeline.deliver()
    assert calls.seen == [{"job": job["id"], "n": 5}]
    assert services.runs.runs(ACME, task.id, limit=5, cursor=None).items[0].status == "complete"


@pytest.fixture
def approving_record(
    services: Services, settings: Settings, clock: FakeClock, actions: Registry
) -> Iterator[Services]:
    """Services whose operator made `record` jobs wait for approval by default
    (installed over the default `services`)."""
    built = Services.build(
        replace(settings, approval_actions=("record",)),
        clock=clock,
        actions=actions,
        sleep=clock.advance,
    )
    services_module.use(built)
    yield built
    services_module.use(None)


def test_the_operator_can_make_an_action_require_approval_by_default(
    approving_record: Services, api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    catalogue = {a["name"]: a for a in body(api.get("/v1/queue/actions", token=member))["actions"]}
    assert catalogue["record"]["requires_approval"] is True
    assert catalogue["echo"]["requires_approval"] is False
    job = body(api.post(JOBS, token=member, json_body={"action": "record"}))
    assert job["status"] == "awaiting_approval"
    # A submission cannot turn the operator's default off.
    job = body(
        api.post(JOBS, token=member, json_body={"action": "record", "requires_approval": False})
    )
    assert job["status"] == "awaiting_approval"
    assert body(api.post(JOBS, token=member, json_body={"action": "echo"}))["status"] == "queued"
