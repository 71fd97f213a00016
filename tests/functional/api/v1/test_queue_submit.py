"""`/v1/queue` submission (1), retry (13) and dead letters (14, 15) through
`chalice.test.Client` on moto, with real SQS messages and a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.actions import Registry
from chalicelib.auth.service import Role
from chalicelib.jobs.model import JobStatus
from chalicelib.jobs.service import JobSubmission, QueueService
from chalicelib.jobs.sqs import JobMessage, JobQueue
from chalicelib.storage.jobs import JobStore
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME, Pipeline

JOBS = "/v1/queue/jobs"


def submit(api: Api, token: Token, **fields: Any) -> Any:
    return api.post(JOBS, token=token, json_body={"action": "record", **fields})


def job_of(api: Api, token: Token, job_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = body(api.get(f"{JOBS}/{job_id}", token=token))
    return shown


def test_a_submitted_job_is_queued_runs_once_and_reads_back(
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    answer = submit(api, member, args={"n": 1}, correlation_id="order-1", resource_id="r-9")
    assert answer.status_code == 202
    job = body(answer)
    assert job["id"].startswith("job_")
    assert (job["status"], job["trigger"], job["attempt"]) == ("queued", "queue", 0)
    assert (job["correlation_id"], job["resource_id"]) == ("order-1", "r-9")

    pipeline.deliver(times=2)  # a duplicate delivery runs nothing twice
    assert [c["n"] for c in calls.seen] == [1]
    done = job_of(api, member, job["id"])
    assert (done["status"], done["result"], done["attempt"]) == ("complete", {"n": 1}, 1)
    result = body(api.get(f"{JOBS}/{job['id']}/result", token=member))
    assert result == {"status": "complete", "result": {"n": 1}, "error": None}
    correlated = body(api.get("/v1/queue/correlation/order-1", token=member))
    assert [j["id"] for j in correlated["jobs"]] == [job["id"]]


def test_a_job_id_makes_submission_idempotent(
    services: Services, pipeline: Pipeline, api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    first = submit(api, member, job_id="nightly-2027-01-04", args={"n": 1})
    assert first.status_code == 202
    assert body(first)["id"] == "nightly-2027-01-04"

    again = submit(api, member, job_id="nightly-2027-01-04", args={"n": 2})
    assert again.status_code == 409
    assert "nightly-2027-01-04" in body(again)["detail"]
    listed = body(api.get(JOBS, token=member))["jobs"]
    assert [(j["id"], j["args"]) for j in listed] == [("nightly-2027-01-04", {"n": 1})]

    # Ids belong to their project: another project's same id is its own job
    # (tests/functional/api/v1/test_job_ids.py), and it cannot see this one.
    outsider = make_token("globex")
    assert api.get(f"{JOBS}/nightly-2027-01-04", token=outsider).status_code == 404


def test_a_deferred_job_waits_in_dynamodb_and_starts_on_its_time(
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    job = body(submit(api, member, defer_by=300))
    assert job["status"] == "scheduled"
    assert job["scheduled_for"] == "2027-01-04T09:05:00Z"

    pipeline.tick()
    pipeline.deliver()
    assert calls.seen == []  # not before its time
    clock.advance(300)
    pipeline.tick()  # its time came within the lookahead: the tick sends it
    pipeline.deliver()
    done = job_of(api, member, job["id"])
    assert done["status"] == "complete"
    assert done["started_at"] >= done["scheduled_for"]

    until = body(submit(api, member, defer_until="2027-01-04T10:00:00+01:00"))
    assert until["status"] == "queued"  # that instant has passed: it runs now


def test_defer_and_expiry_are_checked_against_each_other(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")
    both = submit(api, member, defer_by=5, defer_until="2027-01-04T10:00:00Z")
    assert both.status_code == 422
    assert body(both)["errors"][0]["location"] == "body.defer_by"
    late = submit(api, member, defer_by=60, expires=30)
    assert late.status_code == 422
    assert body(late)["errors"][0]["location"] == "body.expires"


def test_a_job_not_started_before_it_expires_ends_expired(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    job = body(submit(api, member, expires=30))
    assert job["expires_at"] == "2027-01-04T09:00:30Z"
    clock.advance(31)  # the workers were busy
    pipeline.deliver()
    ended = job_of(api, member, job["id"])
    assert ended["status"] == "expired"
    assert ended["started_at"] is None
    assert calls.seen == []


def test_bad_submissions_answer_with_errors_at_their_fields(
    api: Api, make_token: Callable[..., Token]
) -> None:
    member = make_token("acme")

    def problem(response: Any, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.body
        found: dict[str, Any] = body(response)
        return found

    bad_args = problem(submit(api, member, action="sleep", args={"seconds": "soon"}), 422)
    assert bad_args["errors"][0]["location"] == "body.args.seconds"
    missing = problem(submit(api, member, action="http_request", args={}), 422)
    assert missing["errors"][0]["location"] == "body.args.url"
    unknown = problem(submit(api, member, action="launch_rockets"), 422)
    assert unknown["errors"][0]["location"] == "body.action"
    extra = problem(submit(api, member, priority=5), 422)
    assert extra["errors"][0]["location"] == "body.priority"
    huge = problem(submit(api, member, args={"blob": "x" * (64 * 1024)}), 413)
    assert huge["errors"][0]["location"] == "body.args"
    malformed = api.post(JOBS, token=member, body="{not json")
    assert problem(malformed, 400)["title"] == "Bad Request"
    assert api.post(JOBS, json_body={"action": "echo"}).status_code == 401
    assert body(api.get(JOBS, token=member))["jobs"] == []  # none of them made a job


def test_retries_run_until_max_tries_and_a_manual_retry_makes_a_linked_job(
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    job = body(
        submit(api, member, action="fail", args={"message": "boom"}, max_tries=3, retry_delay=0)
    )
    assert job["max_attempts"] == 3
    for _ in range(3):
        pipeline.tick()
        pipeline.deliver()
    failed = job_of(api, member, job["id"])
    assert (failed["status"], failed["attempt"], failed["error"]) == ("failed", 3, "boom")

    retried = api.post(f"{JOBS}/{job['id']}/retry", token=member)
    assert retried.status_code == 202
    again = body(retried)
    assert again["id"] != job["id"]
    assert (again["trigger"], again["retry_of"], again["status"]) == ("retry", job["id"], "queued")
    assert (again["action"], again["args"], again["max_attempts"]) == ("fail", job["args"], 3)

    done = body(submit(api, member, args={"n": 1}))
    pipeline.deliver()
    not_yet = api.post(f"{JOBS}/{done['id']}/retry", token=member)
    assert not_yet.status_code == 409
    assert "only failed, cancelled or expired" in body(not_yet)["detail"]
    outsider = make_token("globex")
    assert api.post(f"{JOBS}/{job['id']}/retry", token=outsider).status_code == 404


def test_dead_letters_are_listed_for_admins_and_redrive_runs_them_again(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    calls: Calls,
    make_token: Callable[..., Token],
) -> None:
    member = make_token("acme")
    admin = make_token("ops", role=Role.ADMIN)
    job = body(submit(api, member, args={"n": 1}))
    assert pipeline.dead_letter_all()

    failed = job_of(api, member, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("dead-lettered")
    assert body(api.get("/v1/queue/depth", token=member))["dead_letter"] == 1
    assert body(api.get("/v1/queue/depth", token=make_token("globex")))["dead_letter"] == 0

    assert api.get("/v1/queue/dead-letters", token=member).status_code == 403
    assert api.post("/v1/queue/dead-letters/redrive", token=member, json_body={}).status_code == 403
    listed = body(api.get("/v1/queue/dead-letters", token=admin))
    [letter] = listed["dead_letters"]
    assert (letter["job_id"], letter["job"]["project_id"]) == (job["id"], "acme")
    assert letter["receive_count"] >= 1

    redriven = body(api.post("/v1/queue/dead-letters/redrive", token=admin, json_body={}))
    [moved] = redriven["redriven"]
    assert moved["job_id"] == job["id"]
    assert redriven["remaining"] is False
    again = body(api.post("/v1/queue/dead-letters/redrive", token=admin, json_body={}))
    assert again["redriven"] == []  # moved back once
    assert body(api.get("/v1/queue/dead-letters", token=admin))["dead_letters"] == []

    pipeline.deliver()
    rerun = job_of(api, member, moved["new_job_id"])
    assert (rerun["status"], rerun["retry_of"]) == ("complete", job["id"])
    assert calls.seen == [{"job": moved["new_job_id"], "n": 1}]
    assert body(api.get("/v1/queue/depth", token=member))["dead_letter"] == 0


class RefusingQueue(JobQueue):
    """SQS that refuses every single send (an outage of the API's SQS calls)."""

    def send(self, message: JobMessage, delay_s: int = 0) -> None:
        raise ConnectionError("SQS is unreachable")


def test_a_job_whose_message_sqs_refused_is_sent_by_the_next_tick(
    services: Services,
    pipeline: Pipeline,
    calls: Calls,
    actions: Registry,
    clock: FakeClock,
) -> None:
    refusing = QueueService(
        JobStore(services.settings, services.tables),
        services.attempt_store,
        RefusingQueue(services.settings),
        actions,
        services.approvals,
        clock,
        services.ids,
        clock.advance,
        settings=services.settings,
    )
    job = refusing.submit(ACME, JobSubmission(action="record", args={"n": 1}))
    assert job.status is JobStatus.QUEUED  # recorded, so the client is told 202
    pipeline.deliver()
    assert calls.seen == []
    pipeline.tick()
    pipeline.deliver()
    assert calls.seen == [{"job": job.id, "n": 1}]
