"""A cancel request the executor's watcher never saw (it came as the action
returned, between two of the watcher's looks) still ends the run `cancelled`
(DESIGN §5): the finishing write is conditioned on the flag, and a service
run, whose restart is written ahead of its finish, reads it first."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.actions import Action, ActionContext, Registry
from chalicelib.jobs.model import JobStatus
from chalicelib.storage.binding import bind_tables
from chalicelib.storage.jobs import JobStore
from chalicelib.storage.tasks import TaskStore
from chalicelib.tasks.model import TaskSpec
from chalicelib.wiring import Services
from tests.conftest import RecordArgs
from tests.functional.engine_helpers import ACME, Pipeline, runs


def cancelled_as_it_returns(ctx: ActionContext, args: RecordArgs) -> Any:
    """Asks for its own job's cancel, as `POST .../cancel` would, and returns at once."""
    JobStore(ctx.settings, bind_tables(ctx.settings)).request_cancel(ctx.job.id)
    return {"done": True}


@pytest.fixture
def actions(actions: Registry) -> Registry:
    late = Action("cancelled_as_it_returns", RecordArgs, cancelled_as_it_returns)
    registry = Registry([late])
    for name in actions.names():
        registry.add(actions.get(name))  # type: ignore[arg-type]
    return registry


def test_a_cancel_asked_for_as_the_action_returns_ends_the_run_cancelled(
    services: Services, pipeline: Pipeline
) -> None:
    spec = {"name": "late", "schedule": "0 0 1 1 *", "action": "cancelled_as_it_returns"}
    task = services.tasks.create(ACME, TaskSpec.model_validate(spec))
    services.runs.trigger(ACME, task.id)
    pipeline.deliver()
    [job] = runs(services, task)
    assert (job.status, job.error, job.result) == (JobStatus.CANCELLED, "cancelled", {"done": True})
    assert services.tasks.get(ACME, task.id).last_status == "cancelled"
    assert TaskStore(services.settings, services.tables).slots(task.id).active == frozenset()


def test_a_service_run_cancelled_as_it_returns_is_not_restarted(
    services: Services, pipeline: Pipeline
) -> None:
    spec = {
        "name": "svc",
        "kind": "service",
        "restart": "always",
        "action": "cancelled_as_it_returns",
    }
    task = services.tasks.create(ACME, TaskSpec.model_validate(spec))
    pipeline.tick()
    pipeline.deliver()
    [job] = runs(services, task)
    assert (job.status, job.error) == (JobStatus.CANCELLED, "cancelled")
