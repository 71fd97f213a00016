"""`make deploy STAGE=...`: create or update the stage's CloudFormation stack.

Tables, indexes, queues, the dead-letter queue, the console bucket and the
alarms come from `infra.resources.template(stage)`; `chalice deploy` then
deploys the functions, which find the resources by their stage-derived names.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.resources import template


def deploy(stage: str) -> None:
    cloudformation = boto3.client("cloudformation")
    name = f"tickwork-{stage}-infra"
    body = json.dumps(template(stage))
    waiter: Any
    try:
        cloudformation.describe_stacks(StackName=name)
        exists = True
    except ClientError:
        exists = False
    try:
        if exists:
            cloudformation.update_stack(StackName=name, TemplateBody=body)
            waiter = cloudformation.get_waiter("stack_update_complete")
        else:
            cloudformation.create_stack(StackName=name, TemplateBody=body)
            waiter = cloudformation.get_waiter("stack_create_complete")
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            print(f"{name}: up to date")
            return
        raise
    waiter.wait(StackName=name)
    print(f"{name}: deployed")


if __name__ == "__main__":
    deploy(sys.argv[1] if len(sys.argv) > 1 else "dev")
