"""The whole pipeline on moto with IAM enforced: each function holds exactly its
generated policy (`infra.iam`), with moto's region and account in its ARNs.

One IAM user per function carries that function's policy; each step runs the
function's own code (the app builds its clients as in Lambda) with that
user's access key in the environment, as Lambda hands a function its role's
credentials. Lambda's SQS poller reads the queue with the consuming function's
key too. moto checks every call the way AWS does (`iam_enforced`); Bedrock is
a stand-in that asks moto's IAM; the webhook and HTTP targets are local
servers (no AWS in them). The test steps that stand for SQS itself (making a
message fail until it is dead-lettered) and the reads that check results run
with enforcement off.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.local import LambdaContext
from chalice.test import Client
from moto.core import enable_iam_authentication

from app import app
from chalicelib import wiring as services_module
from chalicelib.actions import Registry, aws
from chalicelib.actions.builtin import BUILTIN
from chalicelib.auth.service import Role
from chalicelib.clock import ManualClock
from chalicelib.engine.fanout import shard_event, tick_shard_function
from chalicelib.settings import Settings
from chalicelib.storage.binding import bind_tables
from chalicelib.tasks.model import EXECUTOR_TIMEOUT_S
from chalicelib.wiring import Services
from infra import iam
from infra.local import provision
from infra.resources import FUNCTIONS
from tests.functional.action_helpers import LOOPBACK, FakeServer, fake_servers, json_reply
from tests.functional.iam_enforced import (
    ACCOUNT,
    Denials,
    EnforcingMotoServer,
    authorize_like_aws,
)
from tests.functional.moto_lambda import docker_free_function

REGION = "us-east-1"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"


@dataclass(frozen=True)
class Key:
    id: str
    secret: str


class Stage:
    """One stage on an IAM-enforcing moto, and a way to act as each function."""

    def __init__(self, server: EnforcingMotoServer, settings: Settings, keys: dict[str, Key]):
        self.server = server
        self.settings = settings
        self.keys = keys
        self.clock = ManualClock(datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC))
        self.actions = Registry(list(BUILTIN))
        self.client = Client(app)

    @contextmanager
    def acting_as(self, function: str) -> Iterator[Services]:
        """The function's code with the function's credentials: fresh services
        over the stage's tables bound to the function's key (SQS and action
        clients built anew on first use, from the environment's key)."""
        key = self.keys[function]
        saved = {
            name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = key.id, key.secret
        aws._clients.clear()  # the actions' clients are shared per process
        tables = bind_tables(
            self.settings, aws_access_key_id=key.id, aws_secret_access_key=key.secret
        )
        built = Services.build(
            self.settings,
            clock=self.clock,
            actions=self.actions,
            sleep=self.clock.advance,
            tables=tables,
        )
        services_module.use(built)
        try:
            yield built
        finally:
            services_module.use(None)
            aws._clients.clear()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def sqs(self, function: str) -> Any:
        return self.client_of(function, "sqs")

    def client_of(
        self, function: str, service: Literal["sqs", "dynamodb", "bedrock-runtime"]
    ) -> Any:
        """A boto3 client of `service` signed with `function`'s key."""
        key = self.keys[function]
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id=key.id,
            aws_secret_access_key=key.secret,
        )

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        with self.acting_as("api_handler"):
            response = self.client.http.request(
                method,
                path,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                body=json.dumps(body).encode() if body is not None else b"",
            )
        assert response.status_code < 300, (method, path, response.status_code, response.body)
        return json.loads(response.body) if response.body else None

    def tick(self) -> None:
        """The minute's tick invokes `tick_shard` once per shard (on moto's Lambda,
        with the tick's key); each of those events then runs, as Lambda would run
        it, with `tick_shard`'s key."""
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        started: list[int] = []
        with self.acting_as("tick") as built:
            invoke = built.tick.start_shards
            assert invoke is not None

            def start_and_keep(shards: Sequence[int]) -> None:
                invoke(shards)
                started.extend(shards)

            built.tick.start_shards = start_and_keep
            self.client.lambda_.invoke("tick", event)
        with self.acting_as("tick_shard"):
            for shard in started:
                context = LambdaContext("tick_shard", 1769, max_runtime_ms=60_000)
                app.handler_map["tick_shard"](shard_event([shard]), context)

    def poll(self, function: str, queue: str) -> list[dict[str, Any]]:
        """What Lambda's event source does for `function`: receive, then delete.
        It knows the queue by its ARN, so it never asks for the URL."""
        sqs = self.sqs(function)
        url = f"{self.server.endpoint}/{ACCOUNT}/{self.settings.queue_name(queue)}"
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        taken = []
        while messages := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            taken += messages
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return taken

    def execute(self) -> int:
        """Deliver every job message to the executor, round after round."""
        delivered = 0
        for _ in range(10):
            messages = self.poll("execute_jobs", "jobs")
            if not messages:
                return delivered
            with self.acting_as("execute_jobs"):
                for start in range(0, len(messages), 10):
                    event = self.client.events.generate_sqs_event(
                        message_bodies=[m["Body"] for m in messages[start : start + 10]],
                        queue_name=self.settings.queue_name("jobs"),
                    )
                    context = LambdaContext(
                        "execute_jobs", 1024, max_runtime_ms=EXECUTOR_TIMEOUT_S * 1000
                    )
                    answer = app.handler_map["execute_jobs"](event, context)
                    assert answer == {"batchItemFailures": []}
            delivered += len(messages)
        raise AssertionError("the jobs queue never drained")


def _function(endpoint: str, stage: str) -> str:
    """A function `invoke_lambda` may call, on moto's docker-free backend."""
    return docker_free_function(endpoint, f"reports-{stage}", REGION)


def _query_table(endpoint: str, stage: str) -> str:
    name = f"sales-{stage}"
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "k1"}, "n": {"N": "7"}})
    return name


def users(endpoint: str, settings: Settings, functions: tuple[str, ...]) -> dict[str, Key]:
    """One IAM user per function holding exactly its generated policy."""
    client = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    place = iam.Place(REGION, ACCOUNT)
    keys = {}
    for function in functions:
        user = f"{settings.stage}-{function}"
        client.create_user(UserName=user)
        client.put_user_policy(
            UserName=user,
            PolicyName="tickwork",
            PolicyDocument=json.dumps(iam.policy(function, settings.stage, settings, place)),
        )
        made = client.create_access_key(UserName=user)["AccessKey"]
        keys[function] = Key(made["AccessKeyId"], made["SecretAccessKey"])
    return keys


_stage_numbers = itertools.count(1)


@pytest.fixture
def denials() -> Denials:
    return Denials()


@pytest.fixture
def webhook() -> Iterator[FakeServer]:
    with fake_servers() as serve:
        yield serve(lambda request: json_reply(200, {"ok": True}))


@pytest.fixture
def stage(
    monkeypatch: pytest.MonkeyPatch, denials: Denials, webhook: FakeServer
) -> Iterator[Stage]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = EnforcingMotoServer(denials, bedrock_answer="All quiet.")
    server.start()
    try:
        endpoint = server.endpoint
        # moto's backends are the process's: names unique to this test's stage.
        name = f"iam{os.getpid()}n{next(_stage_numbers)}"
        provision(endpoint, name, REGION)
        # The function the tick invokes (the test runs its handler itself).
        docker_free_function(endpoint, tick_shard_function(name), REGION)
        settings = Settings(
            stage=name,
            aws_endpoint_url=endpoint,
            lookahead_s=0.5,
            ai_model=MODEL,
            query_tables=(_query_table(endpoint, name),),
            invoke_functions=(_function(endpoint, name),),
            room_webhooks=(("ops", webhook.url),),
            http_allow_networks=LOOPBACK,
        )
        keys = users(endpoint, settings, FUNCTIONS)
        authorize_like_aws(monkeypatch, denials)
        with enable_iam_authentication():
            yield Stage(server, settings, keys)
    finally:
        server.stop()


@contextmanager
def unchecked() -> Iterator[None]:
    """What stands for SQS itself, or reads that check results: no IAM."""
    from moto.core import disable_iam_authentication

    with disable_iam_authentication():
        yield


def issue_token(stage: Stage, project: str, role: Role) -> str:
    """A token as `POST /v1/admin/tokens` makes it: through the API's services."""
    with stage.acting_as("api_handler") as services:
        return services.tokens.issue(project, role, "iam-test").secret


def submit(stage: Stage, token: str, action: str, args: dict[str, Any], **fields: Any) -> Any:
    return stage.api("POST", JOBS, token, {"action": action, "args": args, **fields})


def test_every_function_does_its_work_with_only_its_own_policy(
    stage: Stage, denials: Denials, webhook: FakeServer
) -> None:
    [query_table] = stage.settings.query_tables
    [function] = stage.settings.invoke_functions
    member = issue_token(stage, "acme", Role.MEMBER)
    admin = issue_token(stage, "ops", Role.ADMIN)

    # A scheduled task: created by the API, fired by the tick, run by the executor.
    task = stage.api(
        "POST",
        "/v1/scheduled-tasks",
        member,
        {"name": "heartbeat", "schedule": "*/10 * * * * *", "action": "echo", "args": {"n": 1}},
    )
    stage.clock.advance(10)
    stage.tick()
    assert stage.execute() >= 1
    runs = stage.api("GET", f"/v1/scheduled-tasks/{task['id']}/runs", member)["jobs"]
    assert runs and all(run["status"] == "complete" for run in runs)
    stage.api("PATCH", f"/v1/scheduled-tasks/{task['id']}", member, {"enabled": False})

    # Queue jobs of every built-in action, each with its backend.
    jobs = {
        "echo": submit(stage, member, "echo", {"n": 2}),
        "sleep": submit(stage, member, "sleep", {"seconds": 0}),
        "fail": submit(stage, member, "fail", {"message": "on purpose"}),
        "http_request": submit(stage, member, "http_request", {"url": webhook.url}),
        "send_message": submit(stage, member, "send_message", {"room_id": "ops", "content": "hi"}),
        "trigger_ai": submit(stage, member, "trigger_ai", {"room_id": "ops", "prompt": "status?"}),
        "run_query": submit(
            stage, member, "run_query", {"statement": f'SELECT * FROM "{query_table}"'}
        ),
        "invoke_lambda": submit(
            stage, member, "invoke_lambda", {"function_name": function, "payload": {"n": 3}}
        ),
    }
    stage.execute()
    ended = {name: stage.api("GET", f"{JOBS}/{job['id']}", member) for name, job in jobs.items()}
    assert {name: job["status"] for name, job in ended.items()} == {
        **{name: "complete" for name in jobs},
        "fail": "failed",
    }, {name: job.get("error") for name, job in ended.items()}
    assert ended["trigger_ai"]["result"]["answer"] == "All quiet."
    assert stage.server.bedrock.models_asked == [MODEL]
    assert ended["run_query"]["result"]["rows"] == [{"pk": "k1", "n": 7}]
    assert ended["invoke_lambda"]["result"]["payload"] == {"n": 3}

    # Approval: held by the API, approved, run by the executor.
    held = submit(stage, member, "echo", {"n": 4}, requires_approval=True)
    stage.api("POST", f"{HITL}/{held['approval_request_id']}/approve", member, {})
    stage.execute()
    assert stage.api("GET", f"{JOBS}/{held['id']}", member)["status"] == "complete"

    # An approval nobody decides: the tick expires it.
    waiting = submit(stage, member, "echo", {"n": 5}, requires_approval=True)
    stage.clock.advance(24 * 3600)
    stage.tick()
    assert stage.api("GET", f"{JOBS}/{waiting['id']}", member)["status"] == "rejected"

    # A job SQS gives up on: dead-lettered, ended by its handler, redriven by the API.
    lost = submit(stage, member, "echo", {"n": 6})
    fail_until_dead_lettered(stage)
    letters = stage.poll("dead_letters", "jobs-dlq")
    assert letters
    with stage.acting_as("dead_letters"):
        event = stage.client.events.generate_sqs_event(
            message_bodies=[m["Body"] for m in letters],
            queue_name=stage.settings.queue_name("jobs-dlq"),
        )
        stage.client.lambda_.invoke("dead_letters", event)
    assert stage.api("GET", f"{JOBS}/{lost['id']}", member)["status"] == "failed"
    redriven = stage.api("POST", "/v1/queue/dead-letters/redrive", admin, {})["redriven"]
    assert [moved["job_id"] for moved in redriven] == [lost["id"]]
    stage.execute()
    rerun = stage.api("GET", f"{JOBS}/{redriven[0]['new_job_id']}", member)
    assert rerun["status"] == "complete"

    # The API's reads: listings, depth, metrics.
    stage.api("GET", f"{JOBS}?status=complete", member)
    stage.api("GET", "/v1/queue/depth", member)
    stage.api("GET", "/v1/queue/observability/metrics?window=86400", admin)
    stage.api("GET", "/v1/queue/dead-letters", admin)

    assert denials.seen == []


def fail_until_dead_lettered(stage: Stage) -> None:
    """SQS's part: every job message is received and never deleted until its
    redrive policy moves it to the dead-letter queue (unchecked: no function)."""
    with unchecked():
        sqs = boto3.client("sqs", endpoint_url=stage.server.endpoint, region_name=REGION)
        url = sqs.get_queue_url(QueueName=stage.settings.queue_name("jobs"))["QueueUrl"]
        for _ in range(6):  # maxReceiveCount is 5
            for message in sqs.receive_message(QueueUrl=url).get("Messages", []):
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )


def test_the_api_may_not_do_what_only_the_executor_may(stage: Stage, denials: Denials) -> None:
    api_key = stage.keys["api_handler"].id
    sqs = stage.sqs("api_handler")
    url = sqs.get_queue_url(QueueName=stage.settings.queue_name("jobs"))["QueueUrl"]
    with pytest.raises(ClientError) as refused:
        sqs.receive_message(QueueUrl=url)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    dynamodb = stage.client_of("api_handler", "dynamodb")
    with pytest.raises(ClientError):
        dynamodb.execute_statement(Statement=f'SELECT * FROM "{stage.settings.query_tables[0]}"')
    bedrock = stage.client_of("api_handler", "bedrock-runtime")
    with pytest.raises(ClientError) as no_model:
        bedrock.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert no_model.value.response["Error"]["Code"] == "AccessDeniedException"
    assert {d.action for d in denials.of(api_key)} == {
        "sqs:ReceiveMessage",
        "dynamodb:PartiQLSelect",
        "bedrock:InvokeModel",
    }
