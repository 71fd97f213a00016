"""The local stack (`python -m infra.local_stack`, what `make run` starts) over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from infra.stack_process import ROOT, StackProcess, free_port

__all__ = ["ADMIN_SECRET", "HELD_RUN_S", "ROOT", "LocalStack", "free_port"]

ADMIN_SECRET = "tw_e2e-admin-secret"
#: Seconds of a `sleep` run that a test keeps running until it cancels it: far
#: longer than any test waits on a loaded machine, within the default 300 s timeout.
HELD_RUN_S = 280


class LocalStack(StackProcess):
    """One `make run` process, with an HTTP client for it."""

    def __init__(
        self,
        state_dir: Path,
        port: int,
        admin_secret: str | None = ADMIN_SECRET,
        env: Mapping[str, str] | None = None,
    ):
        super().__init__(state_dir, port, admin_secret, env=env)

    def client(self, secret: str | None = ADMIN_SECRET) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    started: list[LocalStack] = []

    def make(
        state_dir: Path | None = None,
        admin_secret: str | None = ADMIN_SECRET,
        env: Mapping[str, str] | None = None,
    ) -> LocalStack:
        stack = LocalStack(state_dir or tmp_path / "state", free_port(), admin_secret, env)
        stack.start()
        started.append(stack)
        return stack

    yield make
    for stack in started:
        if stack.running:
            stack.stop()


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack()
