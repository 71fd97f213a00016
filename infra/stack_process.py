"""The local stack as a child process, for the end-to-end tests and the benchmarks:
start `python -m infra.local_stack`, wait for `Tickwork ready`, stop it with
Ctrl-C as a user would."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


#: Starts tried when the port chosen was taken meanwhile.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StackProcess:
    """One local stack. `env` adds `TICKWORK_*` settings; without `admin_secret`
    the stack generates its admin token (and prints it)."""

    def __init__(
        self,
        state_dir: Path,
        port: int,
        admin_secret: str | None,
        *,
        env: Mapping[str, str] | None = None,
        keep_lines: int | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.admin_secret = admin_secret
        self._env = dict(env or {})
        self.output: deque[str] = deque(maxlen=keep_lines)
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> float:
        """Start and wait until ready; returns the seconds it took. A port that
        another process took between `free_port()` and the stack's bind (parallel
        test workers, benchmarks) is replaced by another free one."""
        started = time.monotonic()
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                self._start_once()
            except PortTaken:
                self.port = free_port()
                continue
            return time.monotonic() - started
        self._start_once()
        return time.monotonic() - started

    def _start_once(self) -> None:
        env = {
            **os.environ,
            "TICKWORK_PORT": str(self.port),
            "TICKWORK_STATE_DIR": str(self.state_dir),
            **self._env,
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
            # Its own process group (with the embedded AWS it starts), so
            # `kill()` can end the whole stack at once, as `kill -9 -<pgid>` does.
            process_group=0,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # keep reading, or the stack blocks on a full pipe
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
                self._process.wait()
                self._process = None
                if any(f"port {self.port} is in use" in seen for seen in self.output):
                    raise PortTaken(self.port)
                raise RuntimeError("local stack exited:\n" + "".join(self.output))
            if line.startswith("Tickwork ready"):
                return

    def stop(self) -> int:
        """Ctrl-C; returns the exit code. A stack that does not stop in time has
        every thread's stack printed (SIGUSR1, faulthandler), is killed, and
        RuntimeError carries its output."""
        if self._process is None:
            return 0
        process, self._process = self._process, None
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)
            time.sleep(2)
            process.kill()
            process.wait()
            raise RuntimeError("the stack did not stop:\n" + "".join(self.output)) from None

    def kill(self) -> None:
        """SIGKILL to the whole stack (its process group): a crash, with no
        chance to save anything."""
        if self._process is None:
            return
        process, self._process = self._process, None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
