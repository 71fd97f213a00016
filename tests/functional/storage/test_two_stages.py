"""One process holds two stages: Services built for each on the same AWS
endpoint read and write only their own stage's tables, whichever was built
last (the table names are not global state)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.actions import Registry
from chalicelib.auth.service import Role
from chalicelib.errors import NotFound, Unauthenticated
from chalicelib.settings import Settings
from chalicelib.storage.tasks import TaskFilter
from chalicelib.tasks.model import Task, TaskSpec
from chalicelib.wiring import Services
from tests.conftest import FakeClock
from tests.functional.engine_helpers import ACME, runs


def nightly(services: Services) -> Task:
    spec = {"name": "nightly", "schedule": "0 3 * * *", "action": "record"}
    return services.tasks.create(ACME, TaskSpec.model_validate(spec))


def names(services: Services) -> list[str]:
    page = services.tasks.list(ACME, limit=50, cursor=None, where=TaskFilter())
    return [task.name for task in page.items]


def test_two_stages_built_in_one_process_keep_to_their_own_tables(
    make_settings: Callable[[], Settings], clock: FakeClock, actions: Registry
) -> None:
    blue_settings, green_settings = make_settings(), make_settings()

    def build(settings: Settings) -> Services:
        return Services.build(settings, clock=clock, actions=actions, sleep=clock.advance)

    blue = build(blue_settings)
    green = build(green_settings)

    # Made through blue after green was built: in blue's stage only.
    task = nightly(blue)
    assert blue.tasks.get(ACME, task.id) == task
    with pytest.raises(NotFound):
        green.tasks.get(ACME, task.id)
    assert names(green) == []
    # Green's own name claims (a transaction): the same name is free there.
    twin = nightly(green)
    with pytest.raises(NotFound):
        blue.tasks.get(ACME, twin.id)

    job = blue.runs.trigger(ACME, task.id)
    assert [run.id for run in runs(blue, task)] == [job.id]
    with pytest.raises(NotFound):
        green.queue.get(ACME, job.id)
    assert runs(green, twin) == []

    issued = green.tokens.issue(ACME.project_id, Role.MEMBER, "green")
    assert green.tokens.authenticate(issued.secret).token_id == issued.token.id
    with pytest.raises(Unauthenticated):
        blue.tokens.authenticate(issued.secret)

    # Blue built again (another cold start of its stage); both still keep apart.
    blue_again = build(blue_settings)
    assert blue_again.tasks.get(ACME, task.id) == task
    assert names(blue_again) == ["nightly"]
    assert green.tasks.get(ACME, twin.id) == twin
    assert [run.id for run in runs(blue_again, task)] == [job.id]
    assert runs(green, twin) == []
    with pytest.raises(Unauthenticated):
        blue_again.tokens.authenticate(issued.secret)
    assert green.tokens.authenticate(issued.secret).token_id == issued.token.id
