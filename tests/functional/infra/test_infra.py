"""infra/: the CloudFormation template is valid, and the local stack keeps data."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from infra.local import provision, restore, snapshot
from infra.resources import physical_name, template
from tests.functional.moto_cloudformation import buildable_on_moto


def test_template_creates_the_stack_in_cloudformation(moto_endpoint: str) -> None:
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1"
    )
    cloudformation.create_stack(
        StackName="tickwork-cfn-infra", TemplateBody=json.dumps(buildable_on_moto(template("cfn")))
    )
    stack = cloudformation.describe_stacks(StackName="tickwork-cfn-infra")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    tasks = dynamodb.describe_table(TableName=physical_name("cfn", "tasks"))["Table"]
    assert {i["IndexName"] for i in tasks["GlobalSecondaryIndexes"]} == {"by_project", "due"}
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=physical_name("cfn", "jobs"))["QueueUrl"]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert redrive["deadLetterTargetArn"].endswith(physical_name("cfn", "jobs-dlq"))
    cloudformation.delete_stack(StackName="tickwork-cfn-infra")


def test_provision_is_idempotent_and_sets_ttl_and_redrive(moto_endpoint: str) -> None:
    urls = provision(moto_endpoint, "prov")
    assert provision(moto_endpoint, "prov").keys() == urls.keys()
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    ttl = dynamodb.describe_time_to_live(TableName=physical_name("prov", "jobs"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at_s"
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    attrs = sqs.get_queue_attributes(QueueUrl=urls["JobsQueue"], AttributeNames=["All"])
    assert json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 5


def test_snapshot_and_restore_round_trip(moto_endpoint: str, tmp_path: Path) -> None:
    provision(moto_endpoint, "snapa")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    for i in range(60):  # more than one BatchWriteItem of 25
        dynamodb.put_item(
            TableName=physical_name("snapa", "uniques"),
            Item={"key": {"S": f"k{i}"}, "owner": {"S": "o"}},
        )
    path = tmp_path / "state" / "dynamodb.json"
    assert snapshot(moto_endpoint, "snapa", path, journal_through=3) == 60

    # A new stage stands in for a restarted, empty moto.
    provision(moto_endpoint, "snapa2")
    data = json.loads(path.read_text())
    data["stage"] = "snapa2"
    path.write_text(json.dumps(data))
    assert restore(moto_endpoint, "snapa2", path) == (60, 3)
    count = dynamodb.scan(TableName=physical_name("snapa2", "uniques"), Select="COUNT")["Count"]
    assert count == 60
    assert restore(moto_endpoint, "snapa2", tmp_path / "missing.json") == (0, 0)
