"""The local stack (`python -m infra.local_stack`, what `make run` starts) over HTTP."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_SECRET = "tw_e2e-admin-secret"
READY_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalStack:
    """One `make run` process: start, wait for `Tickwork ready`, stop with SIGINT."""

    def __init__(self, state_dir: Path, port: int, admin_secret: str | None = ADMIN_SECRET):
        self.state_dir = state_dir
        self.port = port
        self.admin_secret = admin_secret
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "TICKWORK_PORT": str(self.port),
            "TICKWORK_STATE_DIR": str(self.state_dir),
        }
        env.pop("TICKWORK_ADMIN_TOKEN", None)
        if self.admin_secret:
            env["TICKWORK_ADMIN_TOKEN"] = self.admin_secret
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=READY_TIMEOUT_S)
            except queue.Empty:
                self.stop()
                raise RuntimeError("local stack not ready:\n" + "".join(self.output)) from None
            if line is None:
                raise RuntimeError("local stack exited:\n" + "".join(self.output))
            if line.startswith("Tickwork ready"):
                return

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        code = self._process.wait(timeout=60)
        self._process = None
        return code

    def client(self, secret: str | None = ADMIN_SECRET) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    started: list[LocalStack] = []

    def make(state_dir: Path | None = None, admin_secret: str | None = ADMIN_SECRET) -> LocalStack:
        stack = LocalStack(state_dir or tmp_path / "state", free_port(), admin_secret)
        stack.start()
        started.append(stack)
        return stack

    yield make
    for stack in started:
        if stack._process is not None:
            stack.stop()


@pytest.fixture
def stack(make_stack: Callable[..., LocalStack]) -> LocalStack:
    return make_stack()
