"""Lambda functions on moto's docker-free backend: they accept invocations
(a synchronous one answers its own event) without running any code. In that
mode moto accepts an invocation of any name, existing or not: what a test
proves about which function is invoked comes from IAM (test_least_privilege)."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from typing import Any

import boto3


def docker_free_function(endpoint: str, name: str, region: str = "us-east-1") -> str:
    """Create function `name` (and a role for it) on the moto server at `endpoint`."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).close()
    return echo_function(
        boto3.client("iam", endpoint_url=endpoint, region_name=region),
        boto3.client("lambda", endpoint_url=endpoint, region_name=region),
        name,
    )


def echo_function(iam: Any, lambda_client: Any, name: str) -> str:
    """Create function `name`, which answers its event, and a role for it, with
    these clients (a moto server's, or `mock_aws`'s)."""
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
    )
    return name
