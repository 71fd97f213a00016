"""What `make run` prints: a line per run and every error by default, request
lines with TICKWORK_LOG=debug, no traceback for a client that went away, one
line for a busy port or a state dir in use, `make reset`, and one bootstrap
admin token whatever order the two ways of starting are used in."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN_SECRET, ROOT, LocalStack, free_port

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_terminal")

#: How long a line the stack is about to print may take to show up on a loaded machine.
LINE_WAIT_S = 60
#: What BaseHTTPRequestHandler's request log line holds (`"GET /path HTTP/1.1" 200 -`).
REQUEST_LINE = re.compile(r'"[A-Z]+ \S+ HTTP/1\.[01]" \d{3} ')


def started(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("terminal"), free_port(), env=env)
    stack.start()
    yield stack
    if stack.running:
        stack.stop()


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from started(tmp_path_factory)


@pytest.fixture(scope="module")
def chatty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from started(tmp_path_factory, TICKWORK_LOG="debug")


def printed(stack: LocalStack) -> str:
    return "".join(stack.output)


def wait_for_line(stack: LocalStack, pattern: str) -> str:
    """The first line of the stack's output matching `pattern`, waiting for it."""
    deadline = time.monotonic() + LINE_WAIT_S
    while time.monotonic() < deadline:
        for line in list(stack.output):
            if re.search(pattern, line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r}:\n{printed(stack)}")


def run_a_queue_job(stack: LocalStack, job_id: str) -> None:
    with stack.client() as client:
        submitted = client.post(
            "/v1/queue/jobs", json={"action": "echo", "args": {"n": 1}, "job_id": job_id}
        )
        assert submitted.status_code == 202, submitted.text
        done = client.get(f"/v1/queue/jobs/{job_id}/result", params={"wait": 20})
        assert done.json()["status"] == "complete", done.text


def leave_mid_answer(stack: LocalStack, path: str = "/openapi.json") -> None:
    """A client that asks, reads the first bytes of the answer (89 kB for the
    spec) and goes away with a reset, as a browser navigating on does."""
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_by_default_runs_are_printed_and_requests_are_not(quiet: LocalStack) -> None:
    run_a_queue_job(quiet, "quiet-1")
    wait_for_line(quiet, r"quiet-1 complete attempt 1: started")
    with httpx.Client(base_url=quiet.url, timeout=30) as http:
        assert http.get("/console/").status_code == 200
        assert http.get("/no/such/path").status_code == 403
    assert not REQUEST_LINE.search(printed(quiet)), printed(quiet)
    assert "tick_shard [" not in printed(quiet)  # a line per shard pass is debug too


def test_with_debug_every_request_has_its_line(chatty: LocalStack) -> None:
    with httpx.Client(base_url=chatty.url, timeout=30) as http:
        assert http.get("/console/").status_code == 200
        assert http.get("/no/such/path").status_code == 403
    wait_for_line(chatty, r'"GET /console/ HTTP/1\.1" 200 ')
    wait_for_line(chatty, r'"GET /no/such/path HTTP/1\.1" 403 ')


def test_a_client_that_goes_away_is_a_debug_line_not_a_traceback(chatty: LocalStack) -> None:
    for _ in range(3):
        leave_mid_answer(chatty)
    leave_mid_answer(chatty, "/console/")
    # The server saw the client go away (the line proves the error was raised)...
    wait_for_line(chatty, r"went away: \[Errno \d+\]")
    with chatty.client() as client:
        assert client.get("/v1/queue/jobs").status_code == 200
    log = printed(chatty)
    # ...and said nothing more about it.
    assert "Traceback" not in log and "Exception occurred" not in log, log


def test_by_default_a_client_that_goes_away_prints_nothing(quiet: LocalStack) -> None:
    before = len(quiet.output)
    for _ in range(3):
        leave_mid_answer(quiet)
    run_a_queue_job(quiet, "quiet-after-reset")  # the server still answers
    wait_for_line(quiet, r"quiet-after-reset complete attempt 1")
    new = list(quiet.output)[before:]
    assert not any("Traceback" in line or "Error" in line for line in new), "".join(new)


def start_and_fail(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make run` that is expected to stop at once."""
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "infra.local_stack"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_busy_port_is_one_line_and_a_failed_exit(quiet: LocalStack, tmp_path: Path) -> None:
    result = start_and_fail(
        {"TICKWORK_PORT": str(quiet.port), "TICKWORK_STATE_DIR": str(tmp_path / "other")}
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"port {quiet.port} is in use: set TICKWORK_PORT to another port\n"
    assert not (tmp_path / "other").exists()  # nothing was started


def test_a_state_dir_in_use_is_one_line_and_reset_refuses_it(quiet: LocalStack) -> None:
    second = start_and_fail(
        {"TICKWORK_PORT": str(free_port()), "TICKWORK_STATE_DIR": str(quiet.state_dir)}
    )
    assert second.returncode == 1
    assert re.fullmatch(
        rf"{re.escape(str(quiet.state_dir))}/ is in use by a running stack \(pid \d+\): "
        r"stop it or set TICKWORK_STATE_DIR\n",
        second.stderr,
    ), second.stderr
    reset = make_reset(quiet.state_dir)
    assert reset.returncode != 0
    assert "is in use by a running stack" in reset.stderr
    assert (quiet.state_dir / "admin-token").exists()


def make_reset(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "reset"],
        cwd=ROOT,
        env={**os.environ, "TICKWORK_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def admin_token_line(stack: LocalStack) -> str:
    found = re.search(r"Admin token \(project default\): (\S+)", printed(stack))
    assert found, printed(stack)
    return found.group(1)


def bootstrap_tokens(stack: LocalStack, secret: str) -> list[str]:
    with stack.client(secret) as admin:
        listed = admin.get("/v1/admin/tokens")
        assert listed.status_code == 200, listed.text
        return [t["id"] for t in listed.json()["tokens"] if t["name"] == "bootstrap admin"]


def test_one_bootstrap_admin_token_whatever_the_order_of_starts(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    by_env = make_stack(state_dir=state)  # TICKWORK_ADMIN_TOKEN=… make run
    first_ids = bootstrap_tokens(by_env, ADMIN_SECRET)
    assert len(first_ids) == 1
    by_env.stop()

    plain = make_stack(state_dir=state, admin_secret=None)  # then a plain make run
    assert admin_token_line(plain) == ADMIN_SECRET
    assert bootstrap_tokens(plain, ADMIN_SECRET) == first_ids
    plain.stop()

    changed = make_stack(state_dir=state, admin_secret="tw_e2e-another-admin")
    assert "Revoked the previous bootstrap admin token" in printed(changed)
    assert len(bootstrap_tokens(changed, "tw_e2e-another-admin")) == 1
    with changed.client(ADMIN_SECRET) as old:
        assert old.get("/v1/admin/tokens").status_code == 401
    changed.stop()

    again = make_stack(state_dir=state, admin_secret=None)
    assert admin_token_line(again) == "tw_e2e-another-admin"
    assert "Revoked" not in printed(again)
    again.stop()

    reset = make_reset(state)
    assert reset.returncode == 0, reset.stderr
    assert not state.exists()
    fresh = make_stack(state_dir=state, admin_secret=None)
    assert admin_token_line(fresh) not in (ADMIN_SECRET, "tw_e2e-another-admin")
