"""The queue API on `make run` over HTTP: the 16 `/v1/queue` routes, HITL,
tenant isolation and admin-only routes (DESIGN §5, §7).

The stack runs on real time, so these tests wait for jobs with the API's own
long-poll (`result?wait=`) or bounded polls; they assert what the jobs
recorded, never how long anything took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_SECRET, HELD_RUN_S, LocalStack, free_port
from tests.e2e.test_engine_e2e import parse, wait_for

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_queue_e2e")

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"
#: Approval requests of this stack expire after this many seconds.
APPROVAL_TTL_S = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        tmp_path_factory.mktemp("queue"),
        free_port(),
        env={"TICKWORK_APPROVAL_TTL_SECONDS": str(APPROVAL_TTL_S), "TICKWORK_TICK_SECONDS": "1"},
    )
    stack.start()
    yield stack
    stack.stop()


def token(stack: LocalStack, project: str, role: str = "member", name: str = "e2e") -> str:
    with stack.client(ADMIN_SECRET) as admin:
        made = admin.post(
            "/v1/admin/tokens", json={"project_id": project, "role": role, "name": name}
        )
        assert made.status_code == 201, made.text
        secret: str = made.json()["token"]
        return secret


@pytest.fixture(scope="module")
def member(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(token(stack, "shop", name="alice")) as client:
        yield client


@pytest.fixture(scope="module")
def outsider(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(token(stack, "rival")) as client:
        yield client


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(ADMIN_SECRET) as client:
        yield client


def submit(client: httpx.Client, status: int = 202, **fields: Any) -> dict[str, Any]:
    answer = client.post(JOBS, json={"action": "echo", **fields})
    assert answer.status_code == status, answer.text
    found: dict[str, Any] = answer.json()
    return found


def result(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's result once it ended (long-polls, as a client would)."""
    for _ in range(6):
        answer = client.get(f"{JOBS}/{job_id}/result", params={"wait": 20})
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        if found["status"] in ("complete", "failed", "cancelled", "rejected", "skipped", "expired"):
            return found
    raise AssertionError(f"job {job_id} never ended")


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"{JOBS}/{job_id}").json()
    return found


def test_a_submitted_job_runs_and_reads_back_through_every_read_route(
    member: httpx.Client,
) -> None:
    made = submit(member, args={"hello": "world"}, correlation_id="order-42", resource_id="cart")
    assert made["status"] == "queued"
    assert result(member, made["id"]) == {
        "status": "complete",
        "result": {"hello": "world"},
        "error": None,
    }
    done = job(member, made["id"])
    assert done["attempt"] == 1
    assert parse(done["started_at"]) >= parse(done["scheduled_for"])
    logs = member.get(f"{JOBS}/{made['id']}/logs").json()
    assert logs["truncated"] is False
    listed = member.get(JOBS, params={"correlation_id": "order-42"}).json()
    assert [j["id"] for j in listed["jobs"]] == [made["id"]]
    correlated = member.get("/v1/queue/correlation/order-42").json()
    assert [j["id"] for j in correlated["jobs"]] == [made["id"]]
    complete = member.get(JOBS, params={"status": "complete", "action": "echo"}).json()
    assert made["id"] in [j["id"] for j in complete["jobs"]]
    depth = member.get("/v1/queue/depth").json()
    assert set(depth) == {
        "scheduled",
        "queued",
        "active",
        "awaiting_approval",
        "dead_letter",
        "oldest_queued_age_seconds",
    }
    actions = {a["name"]: a for a in member.get("/v1/queue/actions").json()["actions"]}
    assert actions["echo"]["requires_approval"] is False
    assert "properties" in actions["sleep"]["args_schema"]


def test_errors_of_the_job_routes(member: httpx.Client, outsider: httpx.Client) -> None:
    bad = submit(member, 422, action="sleep", args={"seconds": -1})
    assert bad["errors"][0]["location"] == "body.args.seconds"
    assert submit(member, 413, args={"blob": "x" * 70_000})["status"] == 413
    both = submit(member, 422, defer_by=1, defer_until="2030-01-01T00:00:00Z")
    assert both["errors"][0]["location"] == "body.defer_by"
    malformed = member.post(JOBS, content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert member.get(f"{JOBS}/job_nope").status_code == 404
    assert member.get(f"{JOBS}/job_nope/result").status_code == 404
    assert member.get(f"{JOBS}/job_nope/logs").status_code == 404
    assert member.post(f"{JOBS}/job_nope/cancel").status_code == 404
    assert member.post(f"{JOBS}/job_nope/retry").status_code == 404
    assert member.get(JOBS, params={"limit": 0}).json()["errors"][0]["location"] == "query.limit"
    assert member.get(f"{JOBS}/x/result", params={"wait": 21}).status_code == 422
    assert httpx.get(f"{member.base_url}{JOBS}").status_code == 401

    mine = submit(member, args={"secret": True})
    result(member, mine["id"])
    for path in (f"{JOBS}/{mine['id']}", f"{JOBS}/{mine['id']}/logs"):
        assert outsider.get(path).status_code == 404
    assert outsider.post(f"{JOBS}/{mine['id']}/cancel").status_code == 404
    assert mine["id"] not in [j["id"] for j in outsider.get(JOBS).json()["jobs"]]


def test_a_job_id_dedups_submissions(member: httpx.Client) -> None:
    first = submit(member, job_id="report-2027-01-04", args={"n": 1})
    assert first["id"] == "report-2027-01-04"
    again = submit(member, 409, job_id="report-2027-01-04", args={"n": 2})
    assert "report-2027-01-04" in again["detail"]
    assert result(member, "report-2027-01-04")["result"] == {"n": 1}


def test_a_deferred_job_starts_no_earlier_than_asked(member: httpx.Client) -> None:
    made = submit(member, defer_by=3, args={"later": True})
    assert made["status"] == "scheduled"
    assert result(member, made["id"])["status"] == "complete"
    ran = job(member, made["id"])
    assert parse(ran["started_at"]) >= parse(ran["scheduled_for"])
    assert (parse(ran["scheduled_for"]) - parse(ran["enqueued_at"])).total_seconds() == 3


def test_cancel_before_and_during_a_run_and_retry_afterwards(member: httpx.Client) -> None:
    waiting = submit(member, defer_by=60)
    cancelled = member.post(f"{JOBS}/{waiting['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert member.post(f"{JOBS}/{waiting['id']}/cancel").status_code == 409

    running = submit(member, action="sleep", args={"seconds": HELD_RUN_S})
    wait_for(lambda: job(member, running["id"])["status"] == "active")
    asked = member.post(f"{JOBS}/{running['id']}/cancel").json()
    assert (asked["status"], asked["cancel_requested"]) == ("active", True)
    ended = result(member, running["id"])
    assert (ended["status"], ended["result"]) == ("cancelled", {"slept": False})

    retried = member.post(f"{JOBS}/{running['id']}/retry")
    assert retried.status_code == 202
    again = retried.json()
    assert (again["retry_of"], again["trigger"], again["action"]) == (
        running["id"],
        "retry",
        "sleep",
    )
    member.post(f"{JOBS}/{again['id']}/cancel")
    done = submit(member)
    result(member, done["id"])
    assert member.post(f"{JOBS}/{done['id']}/retry").status_code == 409


def test_retries_until_max_tries_then_failed_with_the_log(member: httpx.Client) -> None:
    made = submit(member, action="fail", args={"message": "boom"}, max_tries=2, retry_delay=1)
    ended = result(member, made["id"])
    assert (ended["status"], ended["error"]) == ("failed", "boom")
    assert job(member, made["id"])["attempt"] == 2
    assert "boom" in member.get(f"{JOBS}/{made['id']}/logs").json()["log"]


def test_a_job_that_waits_past_its_expiry_ends_expired(member: httpx.Client) -> None:
    made = submit(member, requires_approval=True, expires=1)
    wait_for(lambda: parse(job(member, made["id"])["expires_at"]).timestamp() < time.time())
    member.post(f"{HITL}/{made['approval_request_id']}/approve", json={})
    ended = result(member, made["id"])
    assert ended["status"] == "expired"
    assert job(member, made["id"])["started_at"] is None


def test_hitl_approve_reject_and_decide_twice(member: httpx.Client, outsider: httpx.Client) -> None:
    approved = submit(member, requires_approval=True, args={"deploy": "v2"})
    assert approved["status"] == "awaiting_approval"
    request_id = approved["approval_request_id"]
    pending = member.get(HITL).json()["requests"]
    assert request_id in [r["id"] for r in pending]
    assert outsider.get(f"{HITL}/{request_id}").status_code == 404
    assert outsider.post(f"{HITL}/{request_id}/approve", json={}).status_code == 404
    assert request_id not in [r["id"] for r in outsider.get(HITL).json()["requests"]]

    decided = member.post(f"{HITL}/{request_id}/approve", json={"comment": "go"}).json()
    assert decided["status"] == "approved"
    assert decided["decided_by"].startswith("alice (tok_")
    assert member.post(f"{HITL}/{request_id}/approve", json={}).status_code == 409
    assert member.post(f"{HITL}/{request_id}/reject", json={}).status_code == 409
    assert result(member, approved["id"])["result"] == {"deploy": "v2"}
    assert member.get(f"{HITL}/{request_id}").json()["status"] == "approved"

    rejected = submit(member, requires_approval=True)
    refused = member.post(
        f"{HITL}/{rejected['approval_request_id']}/reject", json={"reason": "freeze"}
    ).json()
    assert (refused["status"], refused["reason"]) == ("rejected", "freeze")
    assert result(member, rejected["id"]) == {
        "status": "rejected",
        "result": None,
        "error": "rejected: freeze",
    }
    assert member.get(f"{HITL}/apr_nope").status_code == 404
    assert member.get(HITL, params={"status": "later"}).status_code == 422


def test_an_undecided_request_expires_and_rejects_its_job(member: httpx.Client) -> None:
    made = submit(member, requires_approval=True)
    request_id = made["approval_request_id"]
    # The stack's approval window is APPROVAL_TTL_S; its tick expires the request.
    wait_for(lambda: member.get(f"{HITL}/{request_id}").json()["status"] == "expired")
    assert member.get(f"{HITL}/{request_id}").json()["reason"] == "expired"
    assert result(member, made["id"])["error"] == "rejected: approval expired"
    assert member.post(f"{HITL}/{request_id}/approve", json={}).status_code == 409


def test_admin_only_routes_answer_403_to_members_and_serve_admins(
    member: httpx.Client, admin: httpx.Client
) -> None:
    for method, path in (
        ("GET", "/v1/queue/dead-letters"),
        ("POST", "/v1/queue/dead-letters/redrive"),
        ("GET", "/v1/queue/observability/metrics"),
    ):
        refused = member.request(method, path, json={} if method == "POST" else None)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert admin.get("/v1/queue/dead-letters").json() == {"dead_letters": [], "next_cursor": None}
    redriven = admin.post("/v1/queue/dead-letters/redrive", json={}).json()
    assert redriven == {"redriven": [], "remaining": False}


def test_the_metrics_count_exactly_the_jobs_that_ran(
    member: httpx.Client, admin: httpx.Client
) -> None:
    def echo_counts() -> dict[str, int]:
        metrics = admin.get("/v1/queue/observability/metrics", params={"window": 3600}).json()
        for action in metrics["actions"]:
            if action["action"] == "echo":
                counts: dict[str, int] = action["counts"]
                return counts
        return {}

    before = echo_counts()
    made = [submit(member, args={"n": n}) for n in range(3)]
    made.append(submit(member, requires_approval=True))
    member.post(f"{HITL}/{made[-1]['approval_request_id']}/reject", json={})
    for each in made:
        result(member, each["id"])
    after = echo_counts()
    assert after.get("complete", 0) - before.get("complete", 0) == 3
    assert after.get("rejected", 0) - before.get("rejected", 0) == 1
    metrics = admin.get("/v1/queue/observability/metrics").json()
    assert metrics["run_time_ms"]["p50"] is not None
    assert metrics["series"]
