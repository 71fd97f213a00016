"""The embedded AWS: moto's server, in a thread for the tests or as a process
of its own for the local stack, where it journals every DynamoDB write.

`python -m infra.embedded_aws --state-dir D --stage S` provisions the stage,
loads its data (snapshot + journal, `infra.journal`), prints `ready <url>`,
and serves until its parent closes its standard input (or dies). Running
apart from the stack, moto's CPU is the second core's: the stack's API, tick
and workers have the other.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from infra.journal import (
    Journal,
    Write,
    compaction_lock,
    delete_through,
    journal_dir,
    load,
    snapshot_path,
)
from infra.local import exit_now, local_credentials, provision, snapshot

#: DynamoDB operations that may change data: what the journal keeps.
_WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: Decides, from a DynamoDB operation name, whether to answer it with throttling.
FaultInjector = Callable[[str], bool]

_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput (injected).",
    }
).encode()

log = logging.getLogger("tickwork.embedded_aws")


class EmbeddedAws:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, throttle: FaultInjector | None = None
    ) -> None:
        """`throttle` (for fault tests) may answer DynamoDB requests with a
        ThrottlingException before moto sees them, as DynamoDB does under load."""
        self._throttle = throttle
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        #: Set once the data is loaded: from then on every write is journaled.
        self.journal: Journal | None = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._host,
            self._port,
            self._watch(moto_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-aws", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def _watch(self, moto_app: WsgiApp) -> WsgiApp:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target.startswith("DynamoDB_"):
                operation = target.rpartition(".")[2]
                if self._throttle is not None and self._throttle(operation):
                    start_response(
                        "400 Bad Request",
                        [
                            ("Content-Type", "application/x-amz-json-1.0"),
                            ("Content-Length", str(len(_THROTTLED))),
                        ],
                    )
                    return [_THROTTLED]
                journal = self.journal
                if journal is not None and operation in _WRITES:
                    return _journaled(moto_app, journal, environ, start_response)
            return moto_app(environ, start_response)

        return app


def _journaled(
    moto_app: WsgiApp,
    journal: Journal,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    """Apply one write and append it under the journal's order lock, then answer
    once it is on disk: moto's order is the journal's, and no answer goes out
    for a write a crash could lose."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    answer: dict[str, Any] = {}
    chunks: list[bytes] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"], answer["headers"] = status, headers
        return chunks.append

    with journal.order:
        if journal.closed:  # stopping: refuse rather than apply what cannot be kept
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return []
        chunks.extend(moto_app(environ, capture))  # moto applies the write here
        record = 0
        if answer["status"].startswith("2"):
            region, access_key = _credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
            record = journal.append(Write(environ["HTTP_X_AMZ_TARGET"], region, access_key, body))
    if record:
        journal.sync(record)
    start_response(answer["status"], answer["headers"])
    return chunks


def _credential_scope(authorization: str) -> tuple[str, str]:
    """(region, access key id) of a SigV4 Authorization header."""
    try:
        scope = authorization.split(",")[0].split()[1].removeprefix("Credential=")
        access_key, _, region, _, _ = scope.split("/")
    except (IndexError, ValueError):
        return "us-east-1", "local"
    return region, access_key


class Compactor:
    """Folds sealed journal segments into the snapshot, one compaction at a
    time, each in a low-priority process of its own (`python -m infra.journal
    compact`): the embedded AWS never scans its tables for it."""

    def __init__(self, state_dir: Path, stage: str) -> None:
        self._state_dir = state_dir
        self._stage = stage
        self._sealed = 0
        self._wanted = threading.Event()
        self._stopping = False
        self._running: subprocess.Popen[bytes] | None = None
        threading.Thread(target=self._run, name="compactor", daemon=True).start()

    def stop(self) -> None:
        """End a compaction under way (the checkpoint of a clean stop supersedes it)."""
        self._stopping = True
        running = self._running
        if running is not None:
            running.terminate()
            running.wait()

    def sealed(self, number: int) -> None:
        self._sealed = max(self._sealed, number)
        self._wanted.set()

    def _run(self) -> None:
        while self._wanted.wait():
            self._wanted.clear()
            if self._stopping:
                return
            through = self._sealed
            self._running = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "infra.journal",
                    "compact",
                    "--state-dir",
                    str(self._state_dir),
                    "--stage",
                    self._stage,
                    "--through",
                    str(through),
                ],
                stdin=subprocess.DEVNULL,
            )
            code = self._running.wait()
            self._running = None
            if code == 0:
                delete_through(self._state_dir, through)
            elif not self._stopping:  # the segments stay; the next seal tries again
                log.warning("journal compaction through %d failed (%d)", through, code)


def checkpoint(aws: EmbeddedAws, compactor: Compactor, state_dir: Path, stage: str) -> None:
    """A clean stop (the stack has stopped its threads): write the snapshot from
    moto itself, with writes held off, and drop the segments it holds, so the
    next start replays nothing."""
    journal = aws.journal
    assert journal is not None
    compactor.stop()

    def save(segment: int) -> None:
        snapshot(aws.endpoint_url, stage, snapshot_path(state_dir), journal_through=segment)

    with compaction_lock(state_dir):
        journal.close(last_words=save)
        delete_through(state_dir, journal.segment)


def serve(
    state_dir: Path, stage: str, host: str, port: int, ready: IO[str]
) -> tuple[EmbeddedAws, Compactor]:
    """Provision, load, journal, and say `ready <url>` on `ready`."""
    aws = EmbeddedAws(host, port)
    aws.start()
    provision(aws.endpoint_url, stage)
    items, replayed, last = load(aws.endpoint_url, stage, state_dir)
    compactor = Compactor(state_dir, stage)
    aws.journal = Journal(journal_dir(state_dir), last + 1, on_seal=compactor.sealed)
    if replayed:
        compactor.sealed(last)  # fold what was replayed, off the request path
    ready.write(f"ready {aws.endpoint_url} items={items} replayed={replayed}\n")
    ready.flush()
    return aws, compactor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto for the local stack, journaled")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the stack stops first (its
    # workers may still write), then closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    local_credentials()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    aws, compactor = serve(args.state_dir, args.stage, args.host, args.port, sys.stdout)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the ready pipe carries one line
    sys.stdin.read()  # until the stack closes it, or dies
    checkpoint(aws, compactor, args.state_dir, args.stage)
    return 0


class AwsProcess:
    """The local stack's handle on `python -m infra.embedded_aws`."""

    def __init__(self, state_dir: Path, stage: str, host: str = "127.0.0.1") -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.embedded_aws",
                "--state-dir",
                str(state_dir),
                "--stage",
                stage,
                "--host",
                host,
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        self._process.stdout.close()
        if not line.startswith("ready "):
            self._process.wait()
            raise RuntimeError(f"the embedded AWS did not start (exit {self._process.returncode})")
        fields = line.split()
        self.endpoint_url = fields[1]
        details = dict(field.split("=", 1) for field in fields[2:])
        self.items_restored = int(details["items"])
        self.writes_replayed = int(details["replayed"])

    def stop(self, timeout_s: float = 60) -> None:
        """Close its stdin: it writes its snapshot and exits (a kill when it does
        not loses nothing: the next start replays the journal)."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def exited(self) -> bool:
        return self._process.poll() is not None


if __name__ == "__main__":
    exit_now(main())
