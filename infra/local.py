"""Provision the embedded AWS (moto) from `infra.resources`, and keep its data.

`provision()` creates the stage's tables and queues from the very resource
properties that `template()` gives CloudFormation. moto keeps everything in
memory, so `snapshot()` writes every table's items to a JSON file and
`restore()` loads them back into freshly provisioned tables; the local stack's
journal (`infra.journal`) keeps every write after the snapshot. SQS messages
are not kept: jobs are the record of truth in DynamoDB, and the engine re-sends
what a queue lost.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import boto3

from infra.resources import physical_name, queues, tables


def local_credentials() -> None:
    """botocore and moto want credentials and a region even when nothing is
    real; the embedded AWS takes any (unless already set)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)


#: Keys of a CloudFormation table resource that CreateTable does not take.
_NOT_CREATE_TABLE = {"TimeToLiveSpecification", "PointInTimeRecoverySpecification"}


@functools.lru_cache(maxsize=16)
def exit_now(code: int) -> NoReturn:
    """End a local stack process once everything it keeps is on disk (the
    journal and snapshot are fsynced and closed by then): flush what is
    buffered and leave without the interpreter's teardown, which frees every
    module and object one by one (1-1.5 s per process on a stop, measured)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _client(service: str, endpoint_url: str, region: str) -> Any:
    # Cached: making a boto3 client costs ~0.1-0.3 s of CPU, and the local
    # stack snapshots every few seconds in the process that fires the tasks.
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def provision(endpoint_url: str, stage: str, region: str = "us-east-1") -> dict[str, str]:
    """Create the stage's tables and queues if missing. Returns queue URLs by logical name."""
    dynamodb = _client("dynamodb", endpoint_url, region)
    for resource in tables(stage).values():
        props = resource["Properties"]
        create = {k: v for k, v in props.items() if k not in _NOT_CREATE_TABLE}
        sse = create.pop("SSESpecification", None)
        if sse:
            # CloudFormation says `SSEEnabled`, the CreateTable API `Enabled`.
            create["SSESpecification"] = {"Enabled": sse["SSEEnabled"], "SSEType": sse["SSEType"]}
        try:
            dynamodb.create_table(**create)
        except dynamodb.exceptions.ResourceInUseException:
            continue  # provisioned already
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            # CloudFormation's TTL property is applied by a separate API call.
            dynamodb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)

    sqs = _client("sqs", endpoint_url, region)
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    # Dead-letter queues first: the jobs queue's redrive policy names one by ARN.
    ordered = sorted(
        queues(stage).items(), key=lambda item: "RedrivePolicy" in item[1]["Properties"]
    )
    for logical, resource in ordered:
        props = dict(resource["Properties"])
        name = props.pop("QueueName")
        attributes = {key: _queue_attribute(value, arns) for key, value in props.items()}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        urls[logical] = url
        arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    return urls


def _queue_attribute(value: Any, arns: dict[str, str]) -> str:
    if isinstance(value, dict):
        resolved = {
            k: arns[v["Fn::GetAtt"][0]] if isinstance(v, dict) and "Fn::GetAtt" in v else v
            for k, v in value.items()
        }
        return json.dumps(resolved)
    if isinstance(value, bool):
        return "true" if value else "false"  # e.g. SqsManagedSseEnabled
    return str(value)


def table_names(stage: str) -> list[str]:
    return [physical_name(stage, logical) for logical in tables(stage)]


def snapshot(
    endpoint_url: str,
    stage: str,
    path: Path,
    region: str = "us-east-1",
    *,
    journal_through: int = 0,
) -> int:
    """Write every item of the stage's tables to `path` atomically, naming the
    last journal segment they hold. Returns the item count."""
    dynamodb = _client("dynamodb", endpoint_url, region)
    paginator = dynamodb.get_paginator("scan")
    dump: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for logical in tables(stage):
        items: list[dict[str, Any]] = []
        # A Scan is right here: this is a compaction of a development
        # database's journal, in a process of its own, not a request path.
        for page in paginator.paginate(TableName=physical_name(stage, logical)):
            items.extend(page.get("Items", []))
        dump[logical] = items
        count += len(items)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"format": 1, "stage": stage, "journal_through": journal_through, "tables": dump},
            handle,
        )
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


def restore(
    endpoint_url: str, stage: str, path: Path, region: str = "us-east-1"
) -> tuple[int, int]:
    """Load a snapshot into the (provisioned, empty) tables. Returns the item
    count and the last journal segment the snapshot holds (0: none)."""
    if not path.exists():
        return 0, 0
    data = json.loads(path.read_text())
    dynamodb = _client("dynamodb", endpoint_url, region)
    count = 0
    known = tables(stage)
    for logical, items in data.get("tables", {}).items():
        if logical not in known:
            continue
        name = physical_name(stage, logical)
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {name: requests}
            while pending:
                response = dynamodb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
        count += len(items)
    return count, int(data.get("journal_through", 0))
