"""An approval covers the run it was given for (DESIGN §5, HITL): a service
restart needs its own decision, every request names who asked for its run
(`requested_by`), and with `TICKWORK_APPROVAL_SELF=deny` the asker cannot
decide its own request (four eyes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib import wiring as services_module
from chalicelib.actions import Registry
from chalicelib.settings import Settings
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.api.v1.test_queue_submit import job_of
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import start_in_background
from tests.functional.engine_helpers import Pipeline

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"
TASKS = "/v1/scheduled-tasks"


def label(name: str, token: Token) -> str:
    """How a request names a token: as `decided_by` does."""
    return f"{name} ({token.id})"


def create_task(api: Api, token: Token, **spec: Any) -> dict[str, Any]:
    fields = {"name": "t", "schedule": "*/10 * * * * *", "action": "record", **spec}
    answer = api.post(TASKS, token=token, json_body=fields)
    assert answer.status_code == 201, answer.body
    task: dict[str, Any] = body(answer)
    return task


def patch_task(api: Api, token: Token, task_id: str, patch: dict[str, Any]) -> None:
    answer = api.patch(f"{TASKS}/{task_id}", token=token, json_body=patch)
    assert answer.status_code == 200, answer.body


def pending(api: Api, token: Token) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = body(api.get(HITL, token=token))["requests"]
    return requests


# ---------------------------------------------------------------- one decision per run
def test_a_restarted_service_run_waits_for_its_own_decision_with_the_tasks_current_args(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    alice = make_token("acme", name="alice")
    bob = make_token("acme", name="bob")
    svc = create_task(
        api,
        alice,
        name="svc",
        kind="service",
        schedule=None,
        action="block",
        args={"v": 1},
        requires_approval=True,
        restart="always",
        restart_delay=1000,  # waits in the due index for the tick
    )
    pipeline.tick()
    pipeline.deliver()
    [first] = pending(api, bob)
    assert first["job_id"].endswith(":0.0")
    assert first["args"] == {"v": 1}
    assert api.post(f"{HITL}/{first['id']}/approve", token=bob, json_body={}).status_code == 200

    # Generation 1 runs; while it runs its task's args change.
    worker = start_in_background(pipeline, calls, 1)
    patch_task(api, alice, svc["id"], {"args": {"v": 2}})
    calls.release.set()
    worker.join(5)
    assert job_of(api, bob, first["job_id"])["status"] == "complete"

    clock.advance(1000)
    pipeline.tick()
    calls.release.clear()
    pipeline.deliver()
    assert len(calls.seen) == 1  # generation 2 did not run on generation 1's approval

    [second] = pending(api, bob)
    restart = job_of(api, bob, second["job_id"])
    assert restart["id"].endswith(":0.1")
    assert (restart["trigger"], restart["status"]) == ("restart", "awaiting_approval")
    assert restart["approval_request_id"] == second["id"] != first["id"]
    assert restart["args"] == second["args"] == {"v": 2}
    assert second["requested_by"] == label("alice", alice)  # the task's last changer

    assert api.post(f"{HITL}/{second['id']}/approve", token=bob, json_body={}).status_code == 200
    worker = start_in_background(pipeline, calls, 2)
    calls.release.set()
    worker.join(5)
    assert calls.seen[1] == {"job": restart["id"]}


def test_automatic_retries_of_one_job_run_on_its_one_decision(
    pipeline: Pipeline, api: Api, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    bob = make_token("acme", name="bob")
    job = body(
        api.post(
            JOBS,
            token=alice,
            json_body={
                "action": "fail",
                "requires_approval": True,
                "max_tries": 2,
                "retry_delay": 0,
            },
        )
    )
    [request] = pending(api, bob)
    assert api.post(f"{HITL}/{request['id']}/approve", token=bob, json_body={}).status_code == 200
    pipeline.deliver()
    done = job_of(api, bob, job["id"])
    assert (done["status"], done["attempt"]) == ("failed", 2)
    assert pending(api, bob) == []

    # A manual retry is a new job: a new run, so a new decision.
    retried = body(api.post(f"{JOBS}/{job['id']}/retry", token=bob))
    assert retried["status"] == "awaiting_approval"
    [again] = pending(api, alice)
    assert again["job_id"] == retried["id"]
    assert again["requested_by"] == label("bob", bob)  # the token that asked for the retry


# ---------------------------------------------------------------- requested_by
def test_a_submitted_jobs_request_names_the_submitting_token(
    api: Api, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    job = body(
        api.post(JOBS, token=alice, json_body={"action": "record", "requires_approval": True})
    )
    [request] = pending(api, alice)
    assert request["requested_by"] == label("alice", alice)
    assert job["requested_by"] == label("alice", alice)
    assert body(api.get(f"{HITL}/{request['id']}", token=alice))["requested_by"] == label(
        "alice", alice
    )


def test_a_firings_request_names_the_token_that_last_changed_its_task(
    pipeline: Pipeline, api: Api, clock: FakeClock, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    carol = make_token("acme", name="carol")
    task = create_task(api, alice, requires_approval=True)
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [first] = pending(api, alice)
    assert first["requested_by"] == label("alice", alice)

    patch_task(api, carol, task["id"], {"args": {"n": 2}})
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    newest = next(r for r in pending(api, alice) if r["id"] != first["id"])
    assert newest["args"] == {"n": 2}
    assert newest["requested_by"] == label("carol", carol)


def test_a_triggered_or_backfilled_runs_request_names_the_token_that_asked(
    pipeline: Pipeline, api: Api, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    bob = make_token("acme", name="bob")
    task = create_task(api, alice, requires_approval=True, schedule="0 0 1 1 *")
    triggered = body(api.post(f"{TASKS}/{task['id']}/trigger", token=bob))
    backfill = api.post(
        f"{TASKS}/{task['id']}/backfill",
        token=bob,
        json_body={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
    )
    assert backfill.status_code in (200, 202), backfill.body
    pipeline.deliver()
    requests = {r["job_id"]: r for r in pending(api, alice)}
    [backfilled] = body(backfill)["jobs"]
    assert set(requests) == {triggered["id"], backfilled["id"]}
    assert {r["requested_by"] for r in requests.values()} == {label("bob", bob)}


# ---------------------------------------------------------------- four eyes
@pytest.fixture
def four_eyes(
    services: Services, settings: Settings, clock: FakeClock, actions: Registry
) -> Iterator[Services]:
    """Services with `TICKWORK_APPROVAL_SELF=deny` (installed over the default `services`)."""
    built = Services.build(
        replace(settings, approval_self="deny"), clock=clock, actions=actions, sleep=clock.advance
    )
    services_module.use(built)
    yield built
    services_module.use(None)


def assert_forbidden(answer: Any) -> None:
    assert answer.status_code == 403, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = body(answer)
    assert (problem["status"], problem["title"]) == (403, "Forbidden")


def test_by_default_the_submitter_may_decide_its_own_request(
    api: Api, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    held = body(
        api.post(JOBS, token=alice, json_body={"action": "record", "requires_approval": True})
    )
    approved = api.post(f"{HITL}/{held['approval_request_id']}/approve", token=alice, json_body={})
    assert approved.status_code == 200
    assert body(approved)["decided_by"] == label("alice", alice)


def test_with_deny_the_submitter_cannot_decide_but_another_token_can(
    four_eyes: Services,
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    alice = make_token("acme", name="alice")
    bob = make_token("acme", name="bob")
    held = body(
        api.post(JOBS, token=alice, json_body={"action": "record", "requires_approval": True})
    )
    request_id = held["approval_request_id"]

    assert_forbidden(api.post(f"{HITL}/{request_id}/approve", token=alice, json_body={}))
    assert_forbidden(
        api.post(f"{HITL}/{request_id}/reject", token=alice, json_body={"reason": "x"})
    )
    # Nothing changed.
    request = body(api.get(f"{HITL}/{request_id}", token=bob))
    assert (request["status"], request["decided_by"]) == ("pending", None)
    assert job_of(api, bob, held["id"])["status"] == "awaiting_approval"
    pipeline.deliver()
    assert calls.seen == []

    approved = api.post(f"{HITL}/{request_id}/approve", token=bob, json_body={})
    assert approved.status_code == 200
    assert body(approved)["decided_by"] == label("bob", bob)
    pipeline.deliver()
    assert calls.seen == [{"job": held["id"]}]


def test_with_deny_the_submitter_may_still_withdraw_its_held_job(
    four_eyes: Services, api: Api, make_token: Callable[..., Token]
) -> None:
    alice = make_token("acme", name="alice")
    held = body(
        api.post(JOBS, token=alice, json_body={"action": "record", "requires_approval": True})
    )
    cancelled = api.post(f"{JOBS}/{held['id']}/cancel", token=alice, json_body={})
    assert cancelled.status_code == 200, cancelled.body
    assert body(cancelled)["status"] == "cancelled"
    request = body(api.get(f"{HITL}/{held['approval_request_id']}", token=alice))
    assert (request["status"], request["reason"]) == ("rejected", "job cancelled")


def test_with_deny_the_tasks_last_changer_cannot_decide_its_runs(
    four_eyes: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    make_token: Callable[..., Token],
) -> None:
    alice = make_token("acme", name="alice")
    bob = make_token("acme", name="bob")
    carol = make_token("acme", name="carol")
    task = create_task(api, alice, requires_approval=True)
    patch_task(api, bob, task["id"], {"args": {"n": 1}})
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [fired] = pending(api, alice)
    assert fired["requested_by"] == label("bob", bob)
    assert_forbidden(api.post(f"{HITL}/{fired['id']}/approve", token=bob, json_body={}))
    # The creator is no longer the last changer: it may decide.
    assert api.post(f"{HITL}/{fired['id']}/approve", token=alice, json_body={}).status_code == 200

    # A trigger: the triggering token asked for the run and bob changed the task
    # whose args it runs with; neither decides it, a third token does.
    triggered = body(api.post(f"{TASKS}/{task['id']}/trigger", token=alice))
    pipeline.deliver()
    request_id = job_of(api, alice, triggered["id"])["approval_request_id"]
    assert_forbidden(api.post(f"{HITL}/{request_id}/reject", token=alice, json_body={}))
    assert_forbidden(api.post(f"{HITL}/{request_id}/approve", token=bob, json_body={}))
    assert api.post(f"{HITL}/{request_id}/reject", token=carol, json_body={}).status_code == 200
    assert job_of(api, alice, triggered["id"])["status"] == "rejected"


def test_approval_self_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).approval_self == "allow"
    assert Settings.from_env({"TICKWORK_APPROVAL_SELF": "deny"}).approval_self == "deny"
    assert Settings.from_env({"TICKWORK_APPROVAL_SELF": "allow"}).approval_self == "allow"
    with pytest.raises(ValueError, match="TICKWORK_APPROVAL_SELF must be one of allow, deny"):
        Settings.from_env({"TICKWORK_APPROVAL_SELF": "never"})


def test_the_openapi_document_lists_the_four_eyes_403(api: Api) -> None:
    paths = body(api.get("/openapi.json"))["paths"]
    for decision in ("approve", "reject"):
        responses = paths[f"{HITL}/{{request_id}}/{decision}"]["post"]["responses"]
        assert "403" in responses
