"""moto's raw floor for one queue job: the AWS calls one job makes, replayed by
plain boto3 threads against a moto server in its own process.

`record_one_job()` runs one `echo` job the way the local stack does — `POST
/v1/queue/jobs` through the Chalice app, the jobs queue's receive, the
executor's batch, the delete, and a `GET /v1/queue/jobs/{id}` — on moto in
this process, and keeps every botocore call it made (service, operation,
parameters). `floor()` replays that list for N jobs from T threads against a
fresh moto process: each replay gets a fresh job id (every string holding the
recorded one is rewritten) and deletes the messages its own receive got. No
HTTP API, no Chalice, no pydantic, no pynamodb, no journal: what is left is
moto's cost for the same calls, the most the stack could reach on this machine.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session

from bench._common import MotoProcess

STAGE = "floor"


@dataclass(frozen=True)
class Call:
    service: str
    operation: str  # botocore's Python name, e.g. put_item
    params: dict[str, Any]


def record_one_job() -> tuple[list[Call], str]:
    """The calls of one queue job, and the job id they name."""
    from chalice.test import Client

    from app import app
    from bench._common import moto_stage
    from chalicelib import wiring as services_module
    from chalicelib.auth.service import Role
    from chalicelib.wiring import Services

    calls: list[Call] = []
    recording = threading.Event()

    def keep(params: dict[str, Any], model: Any, **_: Any) -> None:
        if recording.is_set():
            name = botocore.xform_name(model.name)
            calls.append(Call(model.service_model.service_name, name, copy.deepcopy(params)))

    original = botocore.session.Session.create_client

    def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        client.meta.events.register("provide-client-params.*.*", keep)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[assignment,method-assign]
    try:
        with moto_stage(STAGE) as (settings, endpoint):
            services = Services.build(settings)
            services_module.use(services)
            secret = "tw_floor-" + uuid.uuid4().hex
            services.tokens.ensure(secret, "floor", Role.MEMBER, "floor")
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
            url = sqs.get_queue_url(QueueName=settings.queue_name("jobs"))["QueueUrl"]
            services.sqs.url("jobs")  # the stack's workers know it when the job arrives
            with Client(app) as client:
                # One job first, unrecorded: clients and table descriptions are
                # made once per process, not per job.
                for record in (False, True):
                    if record:
                        recording.set()
                    answer = client.http.post(
                        "/v1/queue/jobs",
                        headers=headers,
                        body=json.dumps({"action": "echo", "args": {"n": 1}}).encode(),
                    )
                    job_id = json.loads(answer.body)["id"]
                    received = sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                    )
                    messages = received.get("Messages", [])
                    services.executor.handle_batch([m["Body"] for m in messages])
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                    read = client.http.get(f"/v1/queue/jobs/{job_id}", headers=headers)
                    recording.clear()
                    status = json.loads(read.body)["status"]
                    if status != "complete":
                        raise RuntimeError(f"the recorded job ended {status}, not complete")
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
    return calls, job_id


def _rewrite(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _rewrite(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    return value


@dataclass
class Floor:
    jobs: int
    threads: int
    calls_per_job: int
    seconds: float
    moto_cpu_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


def floor(calls: list[Call], job_id: str, jobs: int, threads: int) -> Floor:
    """Replay `calls` for `jobs` fresh job ids from `threads` threads."""
    from infra.local import provision

    with MotoProcess() as moto:
        provision(moto.endpoint_url, STAGE)
        cpu_before = moto.cpu_seconds()
        ids = iter(range(jobs))
        lock = threading.Lock()
        errors: list[str] = []

        def next_job() -> int | None:
            with lock:
                return next(ids, None)

        def worker() -> None:
            session = boto3.session.Session()
            clients: dict[str, Any] = {}

            def client(service: str) -> Any:
                if service not in clients:
                    clients[service] = session.client(
                        service,  # type: ignore[call-overload]
                        endpoint_url=moto.endpoint_url,
                        region_name="us-east-1",
                    )
                return clients[service]

            while (n := next_job()) is not None:
                fresh = f"{job_id[:-8]}{n:08d}"
                handles: list[str] = []
                for call in calls:
                    params = _rewrite(call.params, job_id, fresh)
                    if call.operation == "receive_message":
                        params["WaitTimeSeconds"] = 0  # a floor: never wait for a message
                    if call.operation == "delete_message_batch":
                        if not handles:
                            continue  # another thread received this job's message
                        params["Entries"] = [
                            {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)
                        ]
                    method: Callable[..., Any] = getattr(client(call.service), call.operation)
                    try:
                        answer = method(**params)
                    except Exception as exc:  # a conditional write refused: count it
                        errors.append(f"{call.operation}: {type(exc).__name__}")
                        continue
                    if call.operation == "receive_message":
                        handles = [m["ReceiptHandle"] for m in answer.get("Messages", [])]

        started = time.monotonic()
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        seconds = time.monotonic() - started
        moto_cpu = moto.cpu_seconds() - cpu_before
    if len(errors) > jobs:  # some refusals are the job's own (a claim's condition)
        raise RuntimeError(f"the replay went wrong: {errors[:5]}")
    return Floor(jobs, threads, len(calls), seconds, moto_cpu)
