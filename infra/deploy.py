"""`make deploy STAGE=...`: create or update the stage's CloudFormation stack,
and (after `chalice deploy`) upload the web console.

Tables, indexes, queues, the dead-letter queue, the console (a private bucket
behind CloudFront) and the alarms come from `infra.resources.template(stage)`;
the stack step also writes the console's HTTPS origin into the stage's
`TICKWORK_CONSOLE_ORIGIN` in `.chalice/config.json` when it holds none that
works, so that `chalice deploy`, run next, configures CORS for it. `chalice
deploy` then deploys the functions, which find the resources by their
stage-derived names. `python -m infra.deploy STAGE --console API_URL` builds
the console for that API (`chalice url`) and syncs it to the stack's bucket;
`python -m infra.deploy STAGE --batch-failures` turns on partial batch failures
on the executor's SQS event source and bounds the retries and age of the
tick's asynchronous `tick_shard` invocations, which `chalice deploy` cannot set.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.settings import console_origin
from infra.console_build import build as build_console
from infra.resources import ALARM_TOPIC, function_name, log_groups, template

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.type_defs import ParameterTypeDef

#: Chalice's configuration, whose stage `environment_variables` the functions get.
CHALICE_CONFIG = Path(__file__).resolve().parents[1] / ".chalice" / "config.json"


def log_groups_in_the_way(stage: str, *, logs: Any = None, cloudformation: Any = None) -> list[str]:
    """The template's log groups that exist outside the stage's stack.

    Lambda creates `/aws/lambda/<function>` the first time a function logs, so
    a stage whose functions ran before its stack declared their log groups has
    them already, and CloudFormation refuses to create a resource that exists.
    """
    logs = logs or boto3.client("logs")
    cloudformation = cloudformation or boto3.client("cloudformation")
    owned: set[str] = set()
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=f"tickwork-{stage}-infra"
        )
        for page in pages:
            owned |= {r["PhysicalResourceId"] for r in page["StackResourceSummaries"]}
    except ClientError:
        pass  # no stack yet: it owns nothing
    found = []
    for group in log_groups(stage).values():
        name = group["Properties"]["LogGroupName"]
        if name in owned:
            continue
        listed = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if any(g["logGroupName"] == name for g in listed):
            found.append(name)
    return found


def deploy(stage: str) -> None:
    cloudformation = boto3.client("cloudformation")
    name = f"tickwork-{stage}-infra"
    body = json.dumps(template(stage))
    in_the_way = log_groups_in_the_way(stage, cloudformation=cloudformation)
    if in_the_way:
        # Stopped before CloudFormation would fail and roll back (docs/deploy.md).
        sys.exit(
            f"{name}: these log groups exist outside the stack, so CloudFormation "
            f"cannot create them: {', '.join(in_the_way)}. Delete them (their lines "
            "are lost) or import them into the stack, then run again "
            "(docs/deploy.md, Data safety)."
        )
    waiter: Any
    try:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        exists, previous = True, {p["ParameterKey"] for p in stack.get("Parameters", [])}
    except ClientError:
        exists, previous = False, set()
    parameters = alarm_topic_parameter(os.environ.get("TICKWORK_ALARM_TOPIC_ARN"), previous)
    try:
        if exists:
            cloudformation.update_stack(StackName=name, TemplateBody=body, Parameters=parameters)
            waiter = cloudformation.get_waiter("stack_update_complete")
        else:
            cloudformation.create_stack(StackName=name, TemplateBody=body, Parameters=parameters)
            waiter = cloudformation.get_waiter("stack_create_complete")
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise
        print(f"{name}: up to date")
    else:
        waiter.wait(StackName=name)
        print(f"{name}: deployed")
    console_url = stack_outputs(stage, cloudformation)["ConsoleUrl"]
    print(f"Console: {console_url}")
    print(adopt_console_origin(CHALICE_CONFIG, stage, console_url))


def alarm_topic_parameter(topic_arn: str | None, previous: set[str]) -> list[ParameterTypeDef]:
    """The stack's ALARM_TOPIC parameter: the topic given, or (nothing given) the
    one the stack has (`previous`: its parameter keys), so a deploy without
    TICKWORK_ALARM_TOPIC_ARN keeps the alarms' topic; none yet: the default."""
    if topic_arn is not None:
        return [{"ParameterKey": ALARM_TOPIC, "ParameterValue": topic_arn.strip()}]
    if ALARM_TOPIC in previous:
        return [{"ParameterKey": ALARM_TOPIC, "UsePreviousValue": True}]
    return []


def adopt_console_origin(config_path: Path, stage: str, console_url: str) -> str:
    """Set the stage's `TICKWORK_CONSOLE_ORIGIN` in Chalice's config to the
    stack's console origin, unless it already names an origin that is accepted
    (the stack's, or one the operator chose, such as a domain of their own in
    front). A value `chalicelib.settings` refuses, like the plain-HTTP S3
    website origin of earlier versions, is replaced. Returns what it did."""
    origin = console_origin({"TICKWORK_CONSOLE_ORIGIN": console_url})
    config = json.loads(config_path.read_text(encoding="utf-8"))
    stage_config = config.setdefault("stages", {}).setdefault(stage, {})
    env = stage_config.setdefault("environment_variables", {})
    # What Chalice gives the functions: the stage's value, else the app-wide one.
    current = env.get("TICKWORK_CONSOLE_ORIGIN") or config.get("environment_variables", {}).get(
        "TICKWORK_CONSOLE_ORIGIN"
    )
    where = f"TICKWORK_CONSOLE_ORIGIN (stage {stage!r}, {config_path.name})"
    if current:
        try:
            kept = console_origin({"TICKWORK_CONSOLE_ORIGIN": current})
        except ValueError as refused:
            replaced = f"replaced {current!r}, refused: {refused}"
        else:
            if kept == origin:
                return f"{where}: {origin}"
            return f"{where}: kept {kept} (set by hand); the stack's console is {origin}"
    else:
        replaced = "was unset"
    env["TICKWORK_CONSOLE_ORIGIN"] = origin
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return f"{where}: set to {origin} for chalice deploy ({replaced})"


#: `tick_shard`'s asynchronous invocations: no retry, dropped after a minute. A
#: failed or late pass is superseded by the next minute's pass of the same
#: shard, and what it did not fire is still due in DynamoDB, so nothing is lost;
#: Lambda's defaults (two retries, six hours) would only pile passes up behind a
#: throttled function. infra/sam-merge.json sets the same for `chalice package`.
SHARD_INVOKE_CONFIG = {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def bound_shard_invocations(stage: str, *, lambda_client: Any = None) -> dict[str, Any]:
    """Set SHARD_INVOKE_CONFIG on the stage's `tick_shard`; returns what Lambda holds."""
    lambda_client = lambda_client or boto3.client("lambda")
    return dict(
        lambda_client.put_function_event_invoke_config(
            FunctionName=function_name(stage, "tick_shard"), **SHARD_INVOKE_CONFIG
        )
    )


def report_batch_failures(stage: str, *, lambda_client: Any = None) -> list[str]:
    """Set `ReportBatchItemFailures` on the executor's SQS event source mappings,
    so the `batchItemFailures` its handler answers redeliver only those records
    (`chalice package` gets the same from infra/sam-merge.json). Returns the
    mappings' UUIDs."""
    lambda_client = lambda_client or boto3.client("lambda")
    function = function_name(stage, "execute_jobs")
    updated = []
    pages = lambda_client.get_paginator("list_event_source_mappings").paginate(
        FunctionName=function
    )
    for page in pages:
        for mapping in page["EventSourceMappings"]:
            if ":sqs:" not in mapping.get("EventSourceArn", ""):
                continue
            lambda_client.update_event_source_mapping(
                UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"]
            )
            updated.append(mapping["UUID"])
    if not updated:
        sys.exit(f"{function}: no SQS event source to set ReportBatchItemFailures on")
    return updated


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def stack_outputs(stage: str, cloudformation: Any = None) -> dict[str, str]:
    cloudformation = cloudformation or boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=f"tickwork-{stage}-infra")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def upload_console(
    stage: str, api_url: str, *, s3: Any = None, cloudformation: Any = None
) -> list[str]:
    """Build the console for `api_url` and make the stage's bucket hold exactly
    that build. Returns the keys uploaded. CloudFront needs no invalidation:
    every file says `Cache-Control: no-cache`, and the distribution's cache
    policy keeps a file at most its minimum TTL (1 s) before asking S3 whether
    it changed (`infra.resources.CACHING_OPTIMIZED_POLICY_ID`)."""
    bucket = stack_outputs(stage, cloudformation)["ConsoleBucketName"]
    s3 = s3 or boto3.client("s3")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys = set()
        for path in build_console(root, api_base=api_url):
            key = path.relative_to(root).as_posix()
            kind = _CONTENT_TYPES.get(path.suffix) or (
                mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            )
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=path.read_bytes(),
                ContentType=kind,
                # Files keep their names from build to build: browsers revalidate.
                CacheControl="no-cache",
            )
            keys.add(key)
    stale = [
        {"Key": item["Key"]}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
        if item["Key"] not in keys
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start : start + 1000]})
    return sorted(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description="Deploy a stage's infrastructure or console.")
    parser.add_argument("stage", nargs="?", default="dev")
    parser.add_argument(
        "--console",
        metavar="API_URL",
        help="build the console for this API URL (`chalice url`) and upload it",
    )
    parser.add_argument(
        "--batch-failures",
        action="store_true",
        help=(
            "after chalice deploy: ReportBatchItemFailures on the executor's SQS event "
            "source; no retries of tick_shard's asynchronous invocations"
        ),
    )
    args = parser.parse_args()
    if args.batch_failures:
        for uuid in report_batch_failures(args.stage):
            print(f"Event source mapping {uuid}: ReportBatchItemFailures")
        bound_shard_invocations(args.stage)
        print(f"tick_shard asynchronous invocations: {SHARD_INVOKE_CONFIG}")
        return
    if args.console is None:
        deploy(args.stage)
        return
    keys = upload_console(args.stage, args.console.strip())
    print(f"Console: {len(keys)} files at {stack_outputs(args.stage)['ConsoleUrl']}")


if __name__ == "__main__":
    main()
