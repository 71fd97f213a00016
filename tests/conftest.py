"""Shared fixtures: a moto server per test session, a fresh stage per test.

Every test that touches AWS gets its own stage (table and queue names
`tickwork-<stage>-*`) on one moto server, so tests never see each other's data.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.server import ThreadedMotoServer
from pydantic import BaseModel, ConfigDict

from chalicelib import wiring as services_module
from chalicelib.actions import Action, ActionContext, Registry
from chalicelib.actions.builtin import BUILTIN
from chalicelib.auth.service import Role
from chalicelib.clock import ManualClock
from chalicelib.settings import Settings
from chalicelib.wiring import Services
from infra.local import provision

# moto and botocore want credentials and a region even when nothing is real.
#: Tests say FakeClock: a clock that moves only when a test says so.
FakeClock = ManualClock

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


_stage_numbers = itertools.count(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC))


@pytest.fixture
def make_settings(moto_endpoint: str) -> Callable[[], Settings]:
    """Factory: the settings of a new stage, provisioned on the session's moto."""

    def make() -> Settings:
        stage = f"t{os.getpid()}n{next(_stage_numbers)}"
        provision(moto_endpoint, stage)
        # A short lookahead: the tick emits only firings due by the fake clock's now,
        # whose messages carry no SQS delay (moto counts delays in real seconds).
        return Settings(stage=stage, aws_endpoint_url=moto_endpoint, lookahead_s=0.5)

    return make


@pytest.fixture
def settings(make_settings: Callable[[], Settings]) -> Settings:
    return make_settings()


class Calls:
    """What the test actions saw: `record` appends its args; `block` waits for release."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()


class RecordArgs(BaseModel):
    model_config = ConfigDict(extra="allow")


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def actions(calls: Calls) -> Registry:
    def record(ctx: ActionContext, args: RecordArgs) -> Any:
        calls.seen.append({"job": ctx.job.id, **args.model_dump()})
        return {"n": len(calls.seen)}

    def block(ctx: ActionContext, args: RecordArgs) -> Any:
        calls.seen.append({"job": ctx.job.id})
        while not calls.release.wait(0.01):
            if ctx.cancelled:
                return {"stopped": True}
        return {"released": True}

    return Registry(
        [*BUILTIN, Action("record", RecordArgs, record), Action("block", RecordArgs, block)]
    )


@pytest.fixture
def services(settings: Settings, clock: FakeClock, actions: Registry) -> Iterator[Services]:
    # The executor's "never early" wait moves the fake clock instead of sleeping.
    built = Services.build(settings, clock=clock, actions=actions, sleep=clock.advance)
    services_module.use(built)
    yield built
    services_module.use(None)


@dataclass(frozen=True)
class Token:
    secret: str
    project_id: str
    role: Role
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
def make_token(services: Services) -> Callable[..., Token]:
    """Factory: `make_token(project_id="p1", role=Role.ADMIN)`."""

    def make(project_id: str = "default", role: Role = Role.MEMBER, name: str = "test") -> Token:
        issued = services.tokens.issue(project_id, role, name)
        return Token(issued.secret, project_id, role, issued.token.id)

    return make
