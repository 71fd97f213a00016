"""`python -m infra.deploy STAGE --console API_URL`: the console bucket holds
exactly the build for that API, with content types browsers accept."""

from __future__ import annotations

import json

import boto3

from infra.deploy import upload_console
from infra.resources import template

API = "https://abc123.execute-api.us-east-1.amazonaws.com/api"


def test_upload_syncs_the_build_to_the_stacks_bucket(moto_endpoint: str) -> None:
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1"
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    cloudformation.create_stack(
        StackName="tickwork-web-infra", TemplateBody=json.dumps(template("web"))
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="tickwork-web-infra")["Stacks"][0][
            "Outputs"
        ]
    }
    bucket = outputs["ConsoleBucketName"]
    s3.put_object(Bucket=bucket, Key="static/js/old.js", Body=b"stale")

    url = upload_console("web", API, s3=s3, cloudformation=cloudformation)

    assert url == outputs["ConsoleUrl"]
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"index.html", "signin.html", "config.js", "static/console.css"} <= keys
    assert "static/js/old.js" not in keys
    page = s3.get_object(Bucket=bucket, Key="tasks.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert "connect-src &#39;self&#39; https://abc123.execute-api.us-east-1.amazonaws.com" in (
        page["Body"].read().decode()
    )
    module = s3.get_object(Bucket=bucket, Key="static/js/api.js")
    assert module["ContentType"] == "text/javascript; charset=utf-8"
    config = s3.get_object(Bucket=bucket, Key="config.js")["Body"].read().decode()
    assert API in config
    cloudformation.delete_stack(StackName="tickwork-web-infra")
