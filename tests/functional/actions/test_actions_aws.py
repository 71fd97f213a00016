"""`run_query` and `invoke_lambda` against moto (DESIGN §6).

Lambda on moto normally runs functions in docker; moto's `awslambda_simple`
backend (switched on through the server's `/moto-api/config`,
`{"lambda": {"use_docker": false}}`) answers Invoke without docker: it echoes
the payload, or returns results queued at `/moto-api/static/lambda-simple/response`.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from chalicelib.actions import ActionFailed
from chalicelib.actions.lambda_invoke import InvokeLambdaArgs, invoke_lambda
from chalicelib.actions.partiql import QueryRefused
from chalicelib.actions.query import RunQueryArgs, run_query
from chalicelib.jobs.model import JobStatus
from chalicelib.settings import Settings
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import FakeClock
from tests.functional.action_helpers import (
    FakeServer,
    action_context,
    fake_servers,
)
from tests.functional.engine_helpers import Pipeline, runs
from tests.functional.moto_lambda import docker_free_function


@pytest.fixture
def webhook() -> Iterator[FakeServer]:
    with fake_servers() as serve:
        yield serve(lambda r: (200, {}, b"ok"))


@pytest.fixture
def reports(moto_endpoint: str) -> str:
    """A table of five rows: pk k0..k4, n 0..4, colour red (odd n) or blue."""
    name = f"reports-{uuid.uuid4().hex[:8]}"
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(5):
        dynamodb.put_item(
            TableName=name,
            Item={
                "pk": {"S": f"k{n}"},
                "n": {"N": str(n)},
                "colour": {"S": "red" if n % 2 else "blue"},
                "ratio": {"N": "0.5"},
                "tags": {"SS": ["b", "a"]},
                "meta": {
                    "M": {"ok": {"BOOL": True}, "none": {"NULL": True}, "l": {"L": [{"N": "1"}]}}
                },
            },
        )
    return name


@pytest.fixture
def aws(moto_endpoint: str, reports: str, webhook: FakeServer) -> Settings:
    """Settings for calling the actions directly: moto, the allowed table, a webhook room."""
    return Settings(
        aws_endpoint_url=moto_endpoint,
        query_tables=(reports, "other-allowed"),
        room_webhooks=(("ops", webhook.url),),
    )


@pytest.fixture
def settings(settings: Settings, aws: Settings) -> Settings:
    """The pipeline tests' stage, with the action settings of `aws`."""
    return replace(settings, query_tables=aws.query_tables, room_webhooks=aws.room_webhooks)


def query(settings: Settings, clock: FakeClock, **args: Any) -> Any:
    return run_query(action_context(settings, clock), RunQueryArgs.model_validate(args))


# -------------------------------------------------------------------- run_query
def test_a_select_returns_rows_as_plain_json(aws: Settings, clock: FakeClock, reports: str) -> None:
    result = query(aws, clock, statement=f'SELECT * FROM "{reports}"')
    assert (result["table"], result["count"]) == (reports, 5)
    assert "more" not in result
    row = min(result["rows"], key=lambda r: r["pk"])
    assert row == {
        "pk": "k0",
        "n": 0,
        "colour": "blue",
        "ratio": 0.5,
        "tags": ["a", "b"],
        "meta": {"ok": True, "none": None, "l": [1]},
    }


def test_parameters_fill_the_placeholders(aws: Settings, clock: FakeClock, reports: str) -> None:
    result = query(
        aws, clock, statement=f'SELECT * FROM "{reports}" WHERE colour = ?', parameters=["red"]
    )
    assert sorted(row["pk"] for row in result["rows"]) == ["k1", "k3"]


def test_rows_are_bounded_by_the_limit(aws: Settings, clock: FakeClock, reports: str) -> None:
    result = query(aws, clock, statement=f'SELECT * FROM "{reports}"', limit=2)
    assert result["count"] == 2 and len(result["rows"]) == 2
    assert result["more"] is True


def test_rows_can_be_posted_to_a_room(
    aws: Settings, clock: FakeClock, reports: str, webhook: FakeServer
) -> None:
    result = query(aws, clock, statement=f'SELECT pk FROM "{reports}"', room_id="ops")
    assert result["posted"] == {"room_id": "ops", "status": 200}
    text = webhook.received[0].json()["text"]
    lines = text.splitlines()
    assert lines[0] == f"5 rows from {reports}"
    assert sorted(lines[1:]) == [f'{{"pk":"k{n}"}}' for n in range(5)]


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("UPDATE \"{t}\" SET n = 9 WHERE pk = 'k0'", "only a SELECT"),
        ('SELECT * FROM "{t}"; DELETE FROM "{t}" WHERE pk = \'k0\'', "unexpected ';'"),
        ("SELECT * FROM \"{t}\" WHERE pk = 'k0';", "unexpected ';'"),
        ("DELETE FROM \"{t}\" WHERE pk = 'k0'", "only a SELECT"),
        ("INSERT INTO \"{t}\" VALUE {{'pk': 'k9'}}", "only a SELECT"),
        ('SELECT * FROM "{t}" WHERE EXISTS (SELECT * FROM "{t}")', "EXISTS is not allowed"),
        (
            'SELECT * FROM "tickwork-prod-tokens"',
            "'tickwork-prod-tokens' is one of Tickwork's own tables",
        ),
        ("SELECT * FROM secrets WHERE pk = ?", "'secrets' is not in the allowed"),
        ('SELECT * FROM "{t}", "secrets"', "unexpected ','"),
        ('SELECT * FROM "{t}" -- comment', "comments are not allowed"),
        ('SELECT * FROM "{t}" WHERE pk = `k0`', "unexpected '`'"),
    ],
)
def test_statements_that_are_not_one_allowed_select_are_refused(
    aws: Settings, clock: FakeClock, reports: str, moto_endpoint: str, statement: str, why: str
) -> None:
    with pytest.raises(QueryRefused, match=why):
        query(aws, clock, statement=statement.format(t=reports))
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    item = dynamodb.get_item(TableName=reports, Key={"pk": {"S": "k0"}})["Item"]
    assert item["n"] == {"N": "0"}


def test_an_allowed_table_that_is_missing_fails_with_dynamodbs_error(
    aws: Settings, clock: FakeClock
) -> None:
    with pytest.raises(ActionFailed, match="query on other-allowed: ResourceNotFoundException"):
        query(aws, clock, statement='SELECT * FROM "other-allowed"')


# ---------------------------------------------------------------- invoke_lambda
def _moto_api(endpoint: str, path: str, data: Any) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}",
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


@pytest.fixture
def function(moto_endpoint: str) -> str:
    """A function on moto's docker-free Lambda backend."""
    return docker_free_function(moto_endpoint, f"fn-{uuid.uuid4().hex[:8]}")


def queue_lambda_result(endpoint: str, result: str) -> None:
    """The next invocation's answer on moto's simple backend."""
    _moto_api(
        endpoint, "static/lambda-simple/response", {"results": [result], "region": "us-east-1"}
    )


def invoke(settings: Settings, clock: FakeClock, **args: Any) -> Any:
    return invoke_lambda(action_context(settings, clock), InvokeLambdaArgs.model_validate(args))


def test_a_request_response_invocation_returns_the_decoded_payload(
    aws: Settings, clock: FakeClock, function: str, moto_endpoint: str
) -> None:
    # The simple backend echoes the event: what came back is what was sent.
    echoed = invoke(aws, clock, function_name=function, payload={"batch": [1, 2], "dry": False})
    assert echoed == {"status_code": 200, "payload": {"batch": [1, 2], "dry": False}}
    queue_lambda_result(moto_endpoint, '{"processed": 2}')
    assert invoke(aws, clock, function_name=function, payload={})["payload"] == {"processed": 2}
    queue_lambda_result(moto_endpoint, "plain text")
    assert invoke(aws, clock, function_name=function)["payload"] == "plain text"


@pytest.mark.parametrize(("invocation_type", "status"), [("Event", 202), ("DryRun", 204)])
def test_event_and_dry_run_invocations_report_their_status(
    aws: Settings, clock: FakeClock, function: str, invocation_type: str, status: int
) -> None:
    result = invoke(
        aws, clock, function_name=function, payload={"a": 1}, invocation_type=invocation_type
    )
    assert result["status_code"] == status


def test_a_function_error_fails_the_run_with_its_type_and_message(
    aws: Settings, clock: FakeClock, function: str, moto_endpoint: str
) -> None:
    # moto reports an answer over Lambda's 6 MB limit as an Unhandled function error.
    queue_lambda_result(moto_endpoint, "x" * 6_000_001)
    with pytest.raises(
        ActionFailed,
        match=rf"{function} failed \(Unhandled\): Function\.ResponseSizeTooLarge: Response",
    ):
        invoke(aws, clock, function_name=function, payload={})


def test_an_unknown_invocation_type_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="validation error"):
        InvokeLambdaArgs.model_validate({"function_name": "f", "invocation_type": "Later"})


# ------------------------------------------------------------- through the engine
def test_through_the_pipeline_a_query_and_an_invocation_are_recorded(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
    reports: str,
    function: str,
    webhook: FakeServer,
) -> None:
    report = make_task(
        action="run_query",
        args={
            "statement": f'SELECT * FROM "{reports}" WHERE colour = ?',
            "parameters": ["blue"],
            "room_id": "ops",
        },
    )
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [queried] = runs(services, report)
    assert queried.status is JobStatus.COMPLETE
    assert queried.result["count"] == 3
    assert webhook.received[0].json()["text"].startswith(f"3 rows from {reports}")

    nightly = make_task(
        action="invoke_lambda", args={"function_name": function, "payload": {"n": 1}}
    )
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    [invoked] = runs(services, nightly)
    assert invoked.status is JobStatus.COMPLETE
    assert invoked.result == {"status_code": 200, "payload": {"n": 1}}

    queue_lambda_result(services.settings.aws_endpoint_url or "", "x" * 6_000_001)
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()
    failed = runs(services, nightly)[0]
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "failed (Unhandled)" in failed.error
