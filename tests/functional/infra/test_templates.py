"""The infra template passes cfn-lint and declares what keeps data safe and seen.

`make cfn-lint` (part of `make test`) lints both templates of a stage: the SAM
template `make package` writes and this one. Here the infra template is linted
in-process, and its encryption, retention, alarms and log groups are checked
one by one, so removing any of them fails a named test.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from cfnlint.api import lint

import app
from infra.deploy import log_groups_in_the_way
from infra.local import provision
from infra.resources import physical_name, template
from tests.functional.moto_cloudformation import buildable_on_moto

Json = dict[str, Any]


def _lint(body: Json) -> list[str]:
    return [str(match) for match in lint(json.dumps(body), regions=["us-east-1"])]


def _of_type(body: Json, kind: str) -> dict[str, Json]:
    return {k: v for k, v in body["Resources"].items() if v["Type"] == kind}


def _app_function_names(stage: str) -> set[str]:
    """The Lambda functions `chalice deploy` makes for app.py, by their names."""
    names = {f"tickwork-{stage}-{source.name}" for source in app.app.event_sources}
    names |= {f"tickwork-{stage}-{function.name}" for function in app.app.pure_lambda_functions}
    if app.app.routes:
        names.add(f"tickwork-{stage}")  # the API handler
    return names


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_infra_template_passes_cfn_lint(stage: str) -> None:
    assert _lint(template(stage)) == []


def test_the_lint_reports_a_broken_template() -> None:
    body = copy.deepcopy(template("dev"))
    body["Resources"]["TickErrorsAlarm"]["Properties"]["ComparisonOperator"] = "Above"
    body["Resources"]["TasksLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"RetentionInDays": 31},  # not a value CloudWatch Logs offers
    }
    found = _lint(body)
    assert any("Above" in line for line in found)
    assert any("31" in line for line in found)


def test_every_table_and_queue_is_encrypted_at_rest() -> None:
    body = template("dev")
    tables = _of_type(body, "AWS::DynamoDB::Table")
    queues = _of_type(body, "AWS::SQS::Queue")
    assert len(tables) == 7 and len(queues) == 2
    for logical, table in tables.items():
        assert table["Properties"].get("SSESpecification") == {
            "SSEEnabled": True,
            "SSEType": "KMS",
        }, logical
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }, logical
    for logical, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical


def test_data_tables_outlive_the_stack_and_a_replacement() -> None:
    tables = _of_type(template("dev"), "AWS::DynamoDB::Table")
    retained = {
        logical
        for logical, table in tables.items()
        if table.get("DeletionPolicy") == "Retain" and table.get("UpdateReplacePolicy") == "Retain"
    }
    # metrics: per-minute counters that expire by TTL, deleted with the stack.
    assert retained == {
        "TasksTable",
        "JobsTable",
        "AttemptsTable",
        "ApprovalsTable",
        "TokensTable",
        "UniquesTable",
    }
    assert "DeletionPolicy" not in tables["MetricsTable"]


def test_alarms_watch_dead_letters_tick_errors_and_executor_throttles() -> None:
    alarms = _of_type(template("dev"), "AWS::CloudWatch::Alarm")
    # (namespace, metric, dimension name, dimension value) -> (threshold, comparison)
    watched = {
        (
            a["Properties"]["Namespace"],
            a["Properties"]["MetricName"],
            dimension["Name"],
            json.dumps(dimension["Value"]),
        ): (a["Properties"]["Threshold"], a["Properties"]["ComparisonOperator"])
        for a in alarms.values()
        for dimension in a["Properties"]["Dimensions"]
    }
    dlq = json.dumps({"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]})
    above_zero = (0, "GreaterThanThreshold")
    assert watched.get(("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq)) == (
        above_zero
    )
    tick = json.dumps("tickwork-dev-tick")
    assert watched.get(("AWS/Lambda", "Errors", "FunctionName", tick)) == above_zero
    tick_shard = json.dumps("tickwork-dev-tick_shard")
    assert watched.get(("AWS/Lambda", "Errors", "FunctionName", tick_shard)) == above_zero
    executor = json.dumps("tickwork-dev-execute_jobs")
    assert watched.get(("AWS/Lambda", "Throttles", "FunctionName", executor)) == above_zero
    # The functions the alarms name are the ones app.py deploys.
    assert {
        "tickwork-dev-tick",
        "tickwork-dev-tick_shard",
        "tickwork-dev-execute_jobs",
    } <= _app_function_names("dev")


def test_every_function_of_the_app_has_a_log_group_with_retention() -> None:
    groups = _of_type(template("dev"), "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"] for g in groups.values()}
    assert names == {f"/aws/lambda/{name}" for name in _app_function_names("dev")}
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}
    # Import-ready: CloudFormation imports only resources that state a DeletionPolicy.
    assert {g["DeletionPolicy"] for g in groups.values()} == {"Delete"}


def test_local_stack_provisions_encrypted_tables_and_queues(moto_endpoint: str) -> None:
    urls = provision(moto_endpoint, "sse")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    for logical in ("tasks", "metrics"):
        described = dynamodb.describe_table(TableName=physical_name("sse", logical))["Table"]
        assert described["SSEDescription"]["Status"] == "ENABLED"
        assert described["SSEDescription"]["SSEType"] == "KMS"
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    for url in urls.values():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["SqsManagedSseEnabled"] == "true"


def test_deploy_names_the_log_groups_lambda_created_before_the_stack(moto_endpoint: str) -> None:
    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, endpoint_url=moto_endpoint, region_name="us-east-1"
        )

    logs, cloudformation = client("logs"), client("cloudformation")
    # A function that ran before the stack declared its group: Lambda made it.
    logs.create_log_group(logGroupName="/aws/lambda/tickwork-early-tick")
    assert log_groups_in_the_way("early", logs=logs, cloudformation=cloudformation) == [
        "/aws/lambda/tickwork-early-tick"
    ]
    # The groups a stack created are its own, not in the way of its updates.
    cloudformation.create_stack(
        StackName="tickwork-own-infra", TemplateBody=json.dumps(buildable_on_moto(template("own")))
    )
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/tickwork-own")["logGroups"]
    assert log_groups_in_the_way("own", logs=logs, cloudformation=cloudformation) == []
    cloudformation.delete_stack(StackName="tickwork-own-infra")
