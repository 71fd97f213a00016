"""Every attempt of a job kept: its start, end, outcome, error and log, in the
job's view and at `GET /v1/queue/jobs/{job_id}/logs?attempt=N` (DESIGN §7, 2
and 12), through `chalice.test.Client` on moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.actions import Action, ActionContext, Registry
from chalicelib.actions.builtin import BUILTIN
from chalicelib.engine.executor import LEASE_MARGIN_S
from chalicelib.jobs.model import JobStatus
from chalicelib.storage.attempts import LOST_ERROR, AttemptStore
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, RecordArgs, Token
from tests.functional.conftest import Api, body
from tests.functional.engine_helpers import ACME, Pipeline, executor_over, runs

JOBS = "/v1/queue/jobs"


@pytest.fixture
def actions(calls: Calls) -> Registry:
    """`flaky` logs its attempt and breaks on the first two."""

    def flaky(ctx: ActionContext, args: RecordArgs) -> Any:
        calls.seen.append({"job": ctx.job.id, "attempt": ctx.job.attempt})
        ctx.log.info(f"this is attempt {ctx.job.attempt}")
        if ctx.job.attempt < 3:
            raise RuntimeError(f"attempt {ctx.job.attempt} broke")
        return {"ok": True}

    return Registry([*BUILTIN, Action("flaky", RecordArgs, flaky)])


def test_every_attempt_keeps_its_start_end_error_and_log(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="flaky", retry_attempts=2, retry_delay=0)
    job = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    member = make_token("acme")

    shown = body(api.get(f"{JOBS}/{job.id}", token=member))
    assert (shown["status"], shown["attempt"], shown["error"]) == ("complete", 3, None)
    attempts = shown["attempts"]
    assert [(a["attempt"], a["status"], a["error"]) for a in attempts] == [
        (1, "failed", "RuntimeError: attempt 1 broke"),
        (2, "failed", "RuntimeError: attempt 2 broke"),
        (3, "complete", None),
    ]
    for a in attempts:
        assert a["started_at"] <= a["finished_at"]
        assert a["log_truncated"] is False
    assert attempts[0]["finished_at"] <= attempts[1]["started_at"]
    assert attempts[2]["started_at"] == shown["started_at"]

    for n in (1, 2, 3):
        log = body(api.get(f"{JOBS}/{job.id}/logs?attempt={n}", token=member))
        assert log["attempt"] == n
        assert f"this is attempt {n}" in log["log"]
        assert {f"this is attempt {m}" in log["log"] for m in (1, 2, 3) if m != n} == {False}
    assert (
        "attempt 1 broke" in body(api.get(f"{JOBS}/{job.id}/logs?attempt=1", token=member))["log"]
    )
    last = body(api.get(f"{JOBS}/{job.id}/logs", token=member))
    assert last["attempt"] == 3 and "this is attempt 3" in last["log"]

    missing = api.get(f"{JOBS}/{job.id}/logs?attempt=4", token=member)
    assert missing.status_code == 404
    assert "no attempt 4" in body(missing)["detail"]
    for bad in ("0", "two"):
        refused = api.get(f"{JOBS}/{job.id}/logs?attempt={bad}", token=member)
        assert refused.status_code == 422
        assert body(refused)["errors"][0]["location"] == "query.attempt"
    outsider = make_token("globex")
    assert api.get(f"{JOBS}/{job.id}/logs?attempt=1", token=outsider).status_code == 404


def test_a_job_not_started_has_no_attempts_and_an_empty_log(
    services: Services, api: Api, make_token: Callable[..., Token], make_task: Callable[..., Task]
) -> None:
    task = make_task(action="flaky")
    job = services.runs.trigger(ACME, task.id)
    member = make_token("acme")
    assert body(api.get(f"{JOBS}/{job.id}", token=member))["attempts"] == []
    assert body(api.get(f"{JOBS}/{job.id}/logs", token=member)) == {
        "log": "",
        "truncated": False,
        "attempt": 0,
    }
    assert api.get(f"{JOBS}/{job.id}/logs?attempt=1", token=member).status_code == 404


class Crash(Exception):
    pass


class DyingAttempts(AttemptStore):
    """The executor dies after the action ran, before it recorded anything."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        raise Crash("executor died")


def test_an_attempt_whose_executor_stopped_is_kept_as_lost(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task(
        action="flaky", schedule="0 * * * *", timeout=30, retry_attempts=3, retry_delay=0
    )
    job = services.runs.trigger(ACME, task.id)
    dying = executor_over(services, clock, attempts=DyingAttempts(services.tables))
    dying.handle_batch([m["Body"] for m in pipeline.receive()])  # runs attempt 1, then "dies"
    [running] = runs(services, task)
    assert (running.status, running.attempt) == (JobStatus.ACTIVE, 1)

    clock.advance(30 + LEASE_MARGIN_S + 1)  # the lease runs out
    pipeline.tick()  # the watchdog sends it again
    pipeline.deliver()  # attempts 2 (breaks) and 3 (completes)
    shown = body(api.get(f"{JOBS}/{job.id}", token=make_token("acme")))
    assert shown["status"] == "complete"
    assert [(a["attempt"], a["status"], a["error"]) for a in shown["attempts"]] == [
        (1, "lost", LOST_ERROR),
        (2, "failed", "RuntimeError: attempt 2 broke"),
        (3, "complete", None),
    ]
    lost = shown["attempts"][0]
    assert lost["started_at"] is not None and lost["finished_at"] is None


def test_pruned_runs_take_their_attempts_with_them(
    services: Services, pipeline: Pipeline, clock: FakeClock, make_task: Callable[..., Task]
) -> None:
    task = make_task(action="echo", keep_runs=1)
    first = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    assert [a.attempt for a in services.attempt_store.of(first.id)] == [1]
    clock.advance(1)  # the second run is the newer
    second = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    assert [j.id for j in runs(services, task)] == [second.id]
    assert services.attempt_store.of(first.id) == []
    assert [a.attempt for a in services.attempt_store.of(second.id)] == [1]


def test_a_run_recorded_before_attempts_were_kept_shows_its_own_log(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    task = make_task(action="echo")
    job = services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    # As such a row is: its log on the job, no attempt items.
    services.attempt_store.forget([(job.id, 1)])
    row = services.tables.jobs(id=job.id)
    row.update(actions=[services.tables.jobs.log.set("from the old days\n")])
    member = make_token("acme")
    assert body(api.get(f"{JOBS}/{job.id}/logs", token=member)) == {
        "log": "from the old days\n",
        "truncated": False,
        "attempt": 1,
    }
    assert body(api.get(f"{JOBS}/{job.id}", token=member))["attempts"] == []
