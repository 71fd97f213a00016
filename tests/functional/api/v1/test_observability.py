"""`GET /v1/queue/observability/metrics` on moto: jobs run through the tick and
the executor's Lambda handlers with real SQS messages, with run times and
queue waits set by the fake clock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from chalice.test import Client
from pydantic import BaseModel

from app import app
from chalicelib import wiring as services_module
from chalicelib.actions import Action, ActionContext, ActionFailed, Registry
from chalicelib.auth.service import Role
from chalicelib.clock import ManualClock
from chalicelib.metrics.model import BUCKET_RATIO
from chalicelib.settings import Settings
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import Calls, FakeClock, Token
from tests.functional.conftest import Api, body
from tests.functional.engine.test_engine import second_firing_while_first_runs
from tests.functional.engine_helpers import ACME, Pipeline

METRICS = "/v1/queue/observability/metrics"


class WorkArgs(BaseModel):
    ms: float


def _spend(ctx: ActionContext, args: WorkArgs) -> None:
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(args.ms / 1000)


def work(ctx: ActionContext, args: WorkArgs) -> Any:
    """Runs for `ms` milliseconds of the fake clock."""
    _spend(ctx, args)
    return {"ms": args.ms}


def crash(ctx: ActionContext, args: WorkArgs) -> Any:
    """Runs for `ms` milliseconds of the fake clock, then fails."""
    _spend(ctx, args)
    raise ActionFailed("broken")


@pytest.fixture
def actions(actions: Registry) -> Registry:
    actions.add(Action("work", WorkArgs, work))
    actions.add(Action("crash", WorkArgs, crash))
    return actions


@pytest.fixture
def admin(make_token: Callable[..., Token]) -> Token:
    return make_token("ops", Role.ADMIN)


def run(
    services: Services, pipeline: Pipeline, clock: FakeClock, task: Task, *, wait_s: float
) -> None:
    """Trigger the task, let its job wait `wait_s` in the queue, then deliver it."""
    services.runs.trigger(ACME, task.id)
    clock.advance(wait_s)
    assert pipeline.deliver() == 1


def within_a_bucket(reported: float | None, true_ms: float) -> bool:
    return reported is not None and true_ms <= reported < true_ms * BUCKET_RATIO


def at(clock: FakeClock, hhmmss: str) -> datetime:
    hour, minute, second = (int(part) for part in hhmmss.split(":"))
    return clock.now().replace(hour=hour, minute=minute, second=second, microsecond=0)


def test_counts_are_exact_and_percentiles_within_a_bucket(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    admin: Token,
    make_token: Callable[..., Token],
    make_task: Callable[..., Task],
) -> None:
    quick = make_task(action="work", args={"ms": 40})
    slow = make_task(action="work", args={"ms": 3000})
    broken = make_task(action="crash", args={"ms": 500})

    run(services, pipeline, clock, quick, wait_s=0.25)  # ends 09:00, outside a 1 h window

    clock.set(at(clock, "10:20:00"))  # another hour: another partition
    run(services, pipeline, clock, quick, wait_s=0.5)
    run(services, pipeline, clock, quick, wait_s=1)
    run(services, pipeline, clock, slow, wait_s=2)
    clock.set(at(clock, "10:21:10"))
    run(services, pipeline, clock, broken, wait_s=0.1)
    run(services, pipeline, clock, broken, wait_s=0.1)
    never_ran = services.runs.trigger(ACME, quick.id)
    cancelled = api.post(f"/v1/queue/jobs/{never_ran.id}/cancel", token=make_token("acme"))
    assert body(cancelled)["status"] == "cancelled"
    clock.set(at(clock, "10:22:00"))

    got = api.get(f"{METRICS}?window=3600", token=admin)
    assert got.status_code == 200
    doc = body(got)
    assert doc["window_seconds"] == 3600
    assert (doc["since"], doc["until"]) == ("2027-01-04T09:22:00Z", "2027-01-04T10:22:00Z")
    none = {"complete": 0, "failed": 0, "cancelled": 0, "rejected": 0, "skipped": 0, "expired": 0}
    assert doc["totals"] == {**none, "complete": 3, "failed": 2, "cancelled": 1}

    # run times 40, 40, 500, 500, 3000 ms; queue waits 100, 100, 500, 1000, 2000 ms
    assert within_a_bucket(doc["run_time_ms"]["p50"], 500)
    assert within_a_bucket(doc["run_time_ms"]["p95"], 3000)
    assert within_a_bucket(doc["run_time_ms"]["p99"], 3000)
    assert within_a_bucket(doc["queue_wait_ms"]["p50"], 500)
    assert within_a_bucket(doc["queue_wait_ms"]["p95"], 2000)

    by_action = {a["action"]: a for a in doc["actions"]}
    assert list(by_action) == ["crash", "work"]
    assert by_action["work"]["counts"] == {**none, "complete": 3, "cancelled": 1}
    assert by_action["crash"]["counts"] == {**none, "failed": 2}
    work_run, work_wait = by_action["work"]["run_time_ms"], by_action["work"]["queue_wait_ms"]
    assert within_a_bucket(work_run["p50"], 40)  # the cancelled job adds no sample
    assert within_a_bucket(work_run["p95"], 3000)
    assert within_a_bucket(work_wait["p50"], 1000)
    assert within_a_bucket(work_wait["p99"], 2000)
    crash_run = by_action["crash"]["run_time_ms"]
    assert all(within_a_bucket(crash_run[p], 500) for p in ("p50", "p95", "p99"))
    assert within_a_bucket(by_action["crash"]["queue_wait_ms"]["p50"], 100)

    assert doc["series"] == [
        {"minute": "2027-01-04T10:20:00Z", "counts": {**none, "complete": 3}},
        {"minute": "2027-01-04T10:21:00Z", "counts": {**none, "failed": 2, "cancelled": 1}},
    ]

    wider = body(api.get(f"{METRICS}?window=7200", token=admin))
    assert wider["since"] == "2027-01-04T08:22:00Z"
    assert wider["totals"]["complete"] == 4
    assert [m["minute"] for m in wider["series"]] == [
        "2027-01-04T09:00:00Z",
        "2027-01-04T10:20:00Z",
        "2027-01-04T10:21:00Z",
    ]
    assert within_a_bucket(wider["queue_wait_ms"]["p50"], 250)  # 100 100 250 500 1000 2000

    narrow = body(api.get(f"{METRICS}?window=60", token=admin))  # 10:21 and 10:22
    assert narrow["totals"] == {**none, "failed": 2, "cancelled": 1}


def test_a_skipped_firing_is_counted_without_a_run_time(
    services: Services,
    pipeline: Pipeline,
    api: Api,
    clock: FakeClock,
    calls: Calls,
    admin: Token,
    make_task: Callable[..., Task],
) -> None:
    make_task(on_overlap="skip", action="block")
    first = second_firing_while_first_runs(pipeline, clock, calls)  # 09:00:10, then 09:00:20
    pipeline.deliver()  # the second finds the slot taken: skipped
    calls.release.set()
    first.join(10)  # the first ends at 09:00:20, after 10 s of the fake clock

    doc = body(api.get(METRICS, token=admin))
    assert doc["window_seconds"] == 3600
    [block] = doc["actions"]
    assert (block["counts"]["complete"], block["counts"]["skipped"]) == (1, 1)
    assert doc["totals"]["skipped"] == 1
    assert all(within_a_bucket(block["run_time_ms"][p], 10_000) for p in ("p50", "p99"))
    assert doc["series"] == [{"minute": "2027-01-04T09:00:00Z", "counts": block["counts"]}]


def test_only_admins_read_metrics_and_the_window_is_validated(
    api: Api, admin: Token, make_token: Callable[..., Token]
) -> None:
    empty = api.get(METRICS, token=admin)
    assert empty.status_code == 200
    doc = body(empty)
    assert doc["totals"]["complete"] == 0
    assert doc["run_time_ms"] == {"p50": None, "p95": None, "p99": None}
    assert (doc["actions"], doc["series"]) == ([], [])

    member = api.get(METRICS, token=make_token("acme"))
    assert member.status_code == 403
    assert member.headers["Content-Type"] == "application/problem+json"
    assert api.get(METRICS).status_code == 401

    for window in ("59", "86401", "0", "-60", "1h", "60.5"):
        refused = api.get(f"{METRICS}?window={window}", token=admin)
        assert refused.status_code == 422, window
        assert body(refused)["errors"][0]["location"] == "query.window"
    assert api.get(f"{METRICS}?window=86400", token=admin).status_code == 200


def test_in_lambda_each_ended_job_prints_one_emf_line(
    settings: Settings,
    clock: FakeClock,
    actions: Registry,
    make_task: Callable[..., Task],
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_lambda = dataclasses.replace(settings, lambda_function_name="tickwork-test-execute_jobs")
    built = Services.build(in_lambda, clock=clock, actions=actions, sleep=clock.advance)
    services_module.use(built)
    task = make_task(action="work", args={"ms": 250})
    with Client(app) as client:
        run(built, Pipeline(client, built), clock, task, wait_s=1.5)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [emf] = lines
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Tickwork"
    assert (emf["action"], emf["outcome"], emf["Runs"]) == ("work", "complete", 1)
    assert (emf["RunTime"], emf["QueueWait"]) == (250, 1500)
    assert emf["project_id"] == "acme"
