"""The deployed functions' limits agree with the code that relies on them.

`.chalice/config.json` holds each function's timeout; the executor's bound on a
run's `timeout`, its lease margin and the jobs queue's visibility timeout are
derived from the executor's. The SAM template is generated here by Chalice's
own generator (what `chalice package` writes, without building the zip) with
infra/sam-merge.json merged in, as `make package` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from chalice.awsclient import TypedAWSClient
from chalice.cli.factory import CLIFactory
from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
from chalice.package import PackageOptions, SAMTemplateGenerator, TemplateDeepMerger
from moto import mock_aws

from chalicelib.engine.executor import LEASE_MARGIN_S
from chalicelib.tasks.model import EXECUTOR_TIMEOUT_S, MAX_RUN_TIMEOUT_S
from infra.deploy import bound_shard_invocations, report_batch_failures
from infra.resources import FUNCTIONS, JOBS_VISIBILITY_TIMEOUT_S
from tests.functional.moto_lambda import echo_function

ROOT = Path(__file__).resolve().parents[3]
#: API Gateway's integration timeout (REST APIs).
API_GATEWAY_TIMEOUT_S = 29


def functions() -> dict[str, Any]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return dict(config["lambda_functions"])


def test_the_executor_timeout_is_the_constant_the_bound_comes_from() -> None:
    assert functions()["execute_jobs"]["lambda_timeout"] == EXECUTOR_TIMEOUT_S == 900
    assert MAX_RUN_TIMEOUT_S + LEASE_MARGIN_S <= EXECUTOR_TIMEOUT_S


def test_each_function_has_its_own_limits() -> None:
    limits = functions()
    assert set(limits) == set(FUNCTIONS)
    assert limits["api_handler"]["lambda_timeout"] < API_GATEWAY_TIMEOUT_S
    assert all(128 <= f["lambda_memory_size"] <= 10_240 for f in limits.values())


def test_the_jobs_queue_hides_a_message_six_executor_timeouts() -> None:
    assert 6 * functions()["execute_jobs"]["lambda_timeout"] <= JOBS_VISIBILITY_TIMEOUT_S


@pytest.fixture
def sam_template(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name="dev")
    graph = ApplicationGraphBuilder().build(config, "dev")
    resources = DependencyBuilder().build_dependencies(graph)
    client = TypedAWSClient(botocore.session.get_session())
    template = SAMTemplateGenerator(config, PackageOptions(client)).generate(resources)
    merge = json.loads((ROOT / "infra" / "sam-merge.json").read_text())
    merged: dict[str, Any] = TemplateDeepMerger().merge(merge, template)
    return merged


def test_the_packaged_executor_reports_partial_batch_failures(
    sam_template: dict[str, Any],
) -> None:
    resources = sam_template["Resources"]
    timeouts = {
        name: r["Properties"]["Timeout"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert timeouts == {
        "APIHandler": 28,
        "Tick": 60,
        "TickShard": 60,
        "ExecuteJobs": 900,
        "DeadLetters": 60,
    }
    [event] = resources["ExecuteJobs"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BatchSize"] == 10  # the rest of Chalice's event is kept
    invoke_config = resources["TickShard"]["Properties"]["EventInvokeConfig"]
    assert invoke_config == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}


def test_after_chalice_deploy_the_executor_event_source_reports_batch_failures() -> None:
    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        echo_function(
            boto3.client("iam", region_name="us-east-1"), lam, "tickwork-dev-execute_jobs"
        )
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="tickwork-dev-jobs")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # What `chalice deploy` leaves: an event source without the setting.
        mapping = lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="tickwork-dev-execute_jobs", BatchSize=10
        )
        assert not lam.get_event_source_mapping(UUID=mapping["UUID"]).get("FunctionResponseTypes")

        assert report_batch_failures("dev", lambda_client=lam) == [mapping["UUID"]]

        updated = lam.get_event_source_mapping(UUID=mapping["UUID"])
        assert updated["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_after_chalice_deploy_shard_passes_are_not_retried() -> None:
    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        echo_function(boto3.client("iam", region_name="us-east-1"), lam, "tickwork-dev-tick_shard")

        bound_shard_invocations("dev", lambda_client=lam)

        held = lam.get_function_event_invoke_config(FunctionName="tickwork-dev-tick_shard")
        assert held["MaximumRetryAttempts"] == 0
        assert held["MaximumEventAgeInSeconds"] == 60
