"""`make run`: the whole of Tickwork on one machine, on the embedded AWS.

Starts the embedded AWS (moto) in a process of its own, which provisions it
from `infra.resources` and loads the data kept in `TICKWORK_STATE_DIR` (a
snapshot and the journal of every write after it: `infra.journal`); makes
sure project `default` has an admin token; serves the Chalice app over HTTP
on `TICKWORK_PORT`, with the tick and the workers, in this process. A write
is answered only once it is on disk, so even `kill -9` loses nothing that was
acknowledged. Ctrl-C (or SIGTERM) stops everything and keeps the data.

Settings (environment):
  TICKWORK_PORT           HTTP port of the API and the console (8000; console at /console/)
  TICKWORK_HOST           interface to bind (127.0.0.1)
  TICKWORK_STATE_DIR      where data survives restarts (.tickwork/; `make reset` clears it)
  TICKWORK_ADMIN_TOKEN    secret of the bootstrap admin token (generated once if unset;
                          a different one replaces and revokes the one the state dir kept)
  TICKWORK_LOG            `debug` adds a line per HTTP request (default `info`: runs and errors)
  TICKWORK_TICK_SECONDS   tick period of the scheduler (5; used by the engine)
  TICKWORK_WORKERS        executor workers (4; used by the engine)
  TICKWORK_HTTP_ALLOW     host:port destinations on this machine `http_request` may
                          call (default: this stack's own API port)
"""

from __future__ import annotations

import errno
import faulthandler
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from chalice.config import Config
from chalice.local import LambdaContext

from chalicelib import wiring as services_module
from chalicelib.auth.service import DEFAULT_PROJECT, Role
from chalicelib.engine.fanout import shard_event
from chalicelib.errors import Unauthenticated
from chalicelib.settings import Settings
from chalicelib.wiring import Services
from infra.api_server import ApiServer
from infra.console_build import build as build_console
from infra.console_server import console_handler
from infra.embedded_aws import AwsProcess
from infra.local import exit_now, local_credentials
from infra.state_dir import DEFAULT_STATE_DIR, StateDirInUse, StateDirLock, bootstrap_secret

STAGE = "local"
#: How long Ctrl-C waits for the tick and the workers before it stops the embedded AWS.
STOP_GRACE_S = 15.0
#: How often the API server's loop looks whether it should stop.
SHUTDOWN_POLL_S = 0.1
CHALICE_CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
#: Names of this machine under which `http_request` may call the stack's own API.
OWN_API_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LocalConfig:
    host: str
    port: int
    state_dir: Path
    admin_token: str | None
    tick_s: float
    workers: int
    log_level: int

    @classmethod
    def from_env(cls) -> LocalConfig:
        env = os.environ
        return cls(
            host=env.get("TICKWORK_HOST", "127.0.0.1"),
            port=int(env.get("TICKWORK_PORT", "8000")),
            state_dir=Path(env.get("TICKWORK_STATE_DIR", DEFAULT_STATE_DIR)),
            admin_token=env.get("TICKWORK_ADMIN_TOKEN") or None,
            tick_s=float(env.get("TICKWORK_TICK_SECONDS", "5")),
            workers=int(env.get("TICKWORK_WORKERS", "4")),
            log_level=log_level(env.get("TICKWORK_LOG", "info")),
        )


def log_level(name: str) -> int:
    """TICKWORK_LOG's level: `debug`, `info`, `warning` or `error`."""
    levels = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
    try:
        return levels[name.strip().lower()]
    except KeyError:
        raise ValueError(f"TICKWORK_LOG={name!r}: use one of {', '.join(levels)}") from None


def port_is_free(host: str, port: int) -> bool:
    """Whether the HTTP server can bind (host, port), asked as it will bind
    (SO_REUSEADDR, as `http.server` does): before minutes of a start are spent."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def busy_port_line(port: int) -> str:
    return f"port {port} is in use: set TICKWORK_PORT to another port"


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    """Run the stack until Ctrl-C; a setting or a state that stops it from
    starting is one line on stderr and exit code 1, not a traceback."""
    try:
        config = LocalConfig.from_env()
    except ValueError as bad_setting:
        print(bad_setting, file=sys.stderr)
        return 1
    if not port_is_free(config.host, config.port):
        print(busy_port_line(config.port), file=sys.stderr)
        return 1
    try:
        lock = StateDirLock(config.state_dir)
    except StateDirInUse as in_use:
        print(f"{in_use}: stop it or set TICKWORK_STATE_DIR", file=sys.stderr)
        return 1
    try:
        return serve(config)
    finally:
        lock.release()


def serve(config: LocalConfig) -> int:
    local_credentials()

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stdout,
        force=True,
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    aws = AwsProcess(config.state_dir, STAGE)
    say(
        f"Restored {aws.items_restored} items and {aws.writes_replayed} journaled writes"
        f" from {config.state_dir}/"
        if aws.items_restored or aws.writes_replayed
        else f"Fresh state in {config.state_dir}/"
    )

    from_env = Settings.from_env()
    settings = replace(
        from_env,
        stage=STAGE,
        aws_endpoint_url=aws.endpoint_url,
        # One process runs the API's, tick's and workers' threads.
        aws_max_connections=100,
        # The tick fires what is due before its next run, and a little more.
        lookahead_s=config.tick_s * 2 + 1,
        # On this machine http_request may call the stack's own API, or the
        # host:port destinations TICKWORK_HTTP_ALLOW lists instead; never the
        # embedded AWS (chalicelib/actions/netguard.py).
        http_allow=from_env.http_allow or tuple((host, config.port) for host in OWN_API_HOSTS),
    )
    shard_passes = LocalShardPasses(settings.due_shards)
    current = Services.build(settings, start_shards=shard_passes.start)
    services_module.use(current)
    current.tables.connect()  # before the API's, tick's and workers' threads start
    bootstrap = bootstrap_secret(config.state_dir, config.admin_token)
    secret = bootstrap.secret
    current.tokens.ensure(secret, DEFAULT_PROJECT, Role.ADMIN, "bootstrap admin")
    if bootstrap.replaced:
        try:
            current.tokens.revoke(current.tokens.authenticate(bootstrap.replaced).token_id)
            say("Revoked the previous bootstrap admin token (TICKWORK_ADMIN_TOKEN changed)")
        except Unauthenticated:
            pass  # revoked already, by hand

    os.environ["TICKWORK_STAGE"] = STAGE  # the handlers name their queues from it
    import app as chalice_app

    shard_passes.handler = chalice_app.on_tick_shard

    # Chalice sets its app's logger ("tickwork") to ERROR; the local stack shows
    # runs, and with TICKWORK_LOG=debug the request lines (`tickwork.http`).
    logging.getLogger("tickwork").setLevel(config.log_level)
    if config.log_level > logging.DEBUG:
        # A line per shard pass at every tick would drown the runs (CloudWatch keeps them).
        logging.getLogger("tickwork.tick.passes").setLevel(logging.WARNING)
    recovered = current.tick.recover()
    if recovered:
        say(f"Re-sent {recovered} waiting jobs")

    # The console is built afresh at every start (a fraction of a second) and
    # served by the same server under /console/, same origin as the API.
    console_dir = tempfile.TemporaryDirectory(prefix="tickwork-console-")
    build_console(Path(console_dir.name))
    try:
        server = ApiServer(
            chalice_app.app,
            Config(chalice_stage=STAGE),
            config.host,
            config.port,
            handler_cls=console_handler(Path(console_dir.name)),
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Taken while the stack was starting.
        print(busy_port_line(config.port), file=sys.stderr)
        aws.stop()
        console_dir.cleanup()
        return 1
    stop = threading.Event()
    jobs_url = current.sqs.url("jobs")
    dlq_url = current.sqs.url("jobs-dlq")

    def daemon(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        return threading.Thread(target=target, args=args, name=name, daemon=True)

    threads = [
        # A shutdown waits for the loop's next look at its flag: 0.1 s, not 0.5.
        daemon("api", server.server.serve_forever, SHUTDOWN_POLL_S),
        daemon("tick", run_ticks, chalice_app.on_tick, config.tick_s, stop),
        daemon(
            "dead-letters",
            poll_queue,
            aws.endpoint_url,
            dlq_url,
            chalice_app.on_dead_letters,
            stop,
            function_timeout_s("dead_letters"),
        ),
        *(
            daemon(
                f"worker-{n}",
                poll_queue,
                aws.endpoint_url,
                jobs_url,
                chalice_app.on_jobs,
                stop,
                function_timeout_s("execute_jobs"),
            )
            for n in range(config.workers)
        ),
    ]
    for thread in threads:
        thread.start()

    # The handler only notes the signal: it runs in the main thread between two
    # of its bytecodes, perhaps inside `stop.wait()` holding the Event's lock,
    # where `stop.set()` would wait for that lock for ever (a stack seen not to
    # stop on Ctrl-C). The main loop sets `stop` itself.
    signals: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # `kill -USR1 <pid>` prints every thread's stack: for a stack that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    base = f"http://{config.host}:{config.port}"
    say(f"Admin token (project {DEFAULT_PROJECT}): {secret}")
    say(f"Console: {base}/console/  (sign in with the admin token above)")
    # For aws-cli or boto3 by hand; no action may call it (chalicelib/actions/netguard.py).
    say(f"Embedded AWS (moto): {aws.endpoint_url}")
    say(f"Tickwork ready on {base}  (API {base}/v1, spec {base}/openapi.json)")
    # Wake up now and then (a signal interrupts the sleep; the handler runs at
    # once) and take no lock the handler could need.
    lost_aws = False
    while not signals:
        if aws.exited:  # nothing can be written any more: stop, and say so
            lost_aws = True
            break
        time.sleep(0.2)
    stop.set()

    say("Stopping...")
    server.shutdown()
    # One deadline for all: a worker inside a long poll or a run finishes on its
    # own (the threads are daemons); Ctrl-C must not wait for each in turn.
    deadline = time.monotonic() + STOP_GRACE_S
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    shard_passes.stop()
    aws.stop()
    console_dir.cleanup()
    if lost_aws:
        print("The embedded AWS stopped unexpectedly; Tickwork stopped.", file=sys.stderr)
        return 1
    say(f"Data kept in {config.state_dir}/. Tickwork stopped.")
    return 0


def run_ticks(
    handler: Callable[[dict[str, Any], Any], Any], period_s: float, stop: threading.Event
) -> None:
    """EventBridge's part: call the tick handler with a scheduled event every period."""
    while True:
        started = time.monotonic()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": {},
        }
        try:
            handler(event, None)
        except Exception:
            logging.getLogger("tickwork.local").exception("tick failed")
        if stop.wait(max(0.0, period_s - (time.monotonic() - started))):
            return


class LocalShardPasses:
    """Lambda's asynchronous invocations of `tick_shard`, which the tick starts
    one per shard: each pass runs in a thread of its own with a context counting
    down from the function's timeout, and the tick does not wait for them."""

    def __init__(self, shards: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=shards, thread_name_prefix="tick-shard")
        self._timeout_ms = function_timeout_s("tick_shard") * 1000
        #: The `tick_shard` handler, once the app is imported.
        self.handler: Callable[[dict[str, Any], Any], Any] | None = None

    def start(self, shards: Sequence[int]) -> None:
        handler = self.handler
        if handler is None:
            raise RuntimeError("tick_shard is not loaded yet")
        for shard in shards:
            self._pool.submit(self._invoke, handler, shard)

    def _invoke(self, handler: Callable[[dict[str, Any], Any], Any], shard: int) -> None:
        context = LambdaContext("tick_shard", 0, max_runtime_ms=self._timeout_ms)
        try:
            handler(shard_event([shard]), context)
        except Exception:  # Lambda records the error; the next tick's pass redoes it
            logging.getLogger("tickwork.local").exception("tick_shard %d failed", shard)

    def stop(self) -> None:
        """Drop the passes not started and wait for those running (each ends by
        its deadline): none may still reach for the embedded AWS once it stops."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def function_timeout_s(name: str) -> int:
    """A function's `lambda_timeout` in `.chalice/config.json`, as deployed."""
    config = json.loads(CHALICE_CONFIG.read_text())
    per_function = config.get("lambda_functions", {}).get(name, {})
    return int(per_function.get("lambda_timeout", config["lambda_timeout"]))


def poll_queue(
    endpoint_url: str,
    queue_url: str,
    handler: Callable[[dict[str, Any], Any], Any],
    stop: threading.Event,
    timeout_s: int,
) -> None:
    """Lambda's SQS event source with `ReportBatchItemFailures`: long-poll, hand
    the handler a real SQS event and a context whose remaining time counts down
    from the function's timeout, and when it returns delete the records it did
    not report in `batchItemFailures` (leave the whole batch to SQS when it raises)."""
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name="us-east-1")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    while not stop.is_set():
        try:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:
            logging.getLogger("tickwork.local").exception("receive failed")
            stop.wait(1)
            continue
        messages = response.get("Messages", [])
        if not messages:
            continue
        event = {"Records": [sqs_record(m, arn) for m in messages]}
        context = LambdaContext("local", 0, max_runtime_ms=timeout_s * 1000)
        try:
            answer = handler(event, context)
        except Exception:
            logging.getLogger("tickwork.local").exception("handler failed; SQS redelivers")
            continue
        again = _reported(answer)
        done = [m for m in messages if m["MessageId"] not in again]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )


def _reported(answer: Any) -> set[str]:
    """The message ids a handler's answer reports as batch item failures."""
    if not isinstance(answer, dict):
        return set()
    return {str(item["itemIdentifier"]) for item in answer.get("batchItemFailures", [])}


def sqs_record(message: Any, arn: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, as AWS builds it from a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


if __name__ == "__main__":
    exit_now(main())
