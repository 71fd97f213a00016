"""`python -m infra.deploy STAGE --console API_URL`: the console bucket holds
exactly the build for that API, with content types browsers accept; the stack
step hands the console's HTTPS origin to the stage's Chalice configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.deploy import adopt_console_origin, upload_console
from infra.resources import template
from tests.functional.moto_cloudformation import buildable_on_moto

API = "https://abc123.execute-api.us-east-1.amazonaws.com/api"


def test_upload_syncs_the_build_to_the_stacks_bucket(moto_endpoint: str) -> None:
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1"
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    cloudformation.create_stack(
        StackName="tickwork-web-infra", TemplateBody=json.dumps(buildable_on_moto(template("web")))
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="tickwork-web-infra")["Stacks"][0][
            "Outputs"
        ]
    }
    bucket = outputs["ConsoleBucketName"]
    s3.put_object(Bucket=bucket, Key="static/js/old.js", Body=b"stale")

    uploaded = upload_console("web", API, s3=s3, cloudformation=cloudformation)

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(uploaded) == keys
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


STACK_CONSOLE = "https://d111111abcdef8.cloudfront.net"


@pytest.fixture
def chalice_config(tmp_path: Path) -> Path:
    """A Chalice config like the project's: a stage with variables of its own."""
    path = tmp_path / "config.json"
    config = {
        "version": "2.0",
        "app_name": "tickwork",
        "environment_variables": {"TICKWORK_DUE_SHARDS": "8"},
        "stages": {"dev": {"environment_variables": {"TICKWORK_STAGE": "dev"}}},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _stage_env(path: Path, stage: str = "dev") -> Any:
    return json.loads(path.read_text())["stages"][stage]["environment_variables"]


def test_the_stacks_console_origin_goes_to_the_stage(chalice_config: Path) -> None:
    said = adopt_console_origin(chalice_config, "dev", STACK_CONSOLE + "/")
    assert _stage_env(chalice_config) == {
        "TICKWORK_STAGE": "dev",
        "TICKWORK_CONSOLE_ORIGIN": STACK_CONSOLE,
    }
    assert "set to" in said
    # Run again: nothing to change, the file stays as it is.
    before = chalice_config.read_text()
    assert "set to" not in adopt_console_origin(chalice_config, "dev", STACK_CONSOLE)
    assert chalice_config.read_text() == before


def test_an_origin_of_the_operators_own_is_kept(chalice_config: Path) -> None:
    adopt_console_origin(chalice_config, "dev", "https://console.example.com")
    said = adopt_console_origin(chalice_config, "dev", STACK_CONSOLE)
    assert _stage_env(chalice_config)["TICKWORK_CONSOLE_ORIGIN"] == "https://console.example.com"
    assert STACK_CONSOLE in said


def test_the_plain_http_website_origin_of_earlier_versions_is_replaced(
    chalice_config: Path,
) -> None:
    config = json.loads(chalice_config.read_text())
    website = "http://tickwork-dev-consolebucket-abc.s3-website-us-east-1.amazonaws.com"
    config["stages"]["dev"]["environment_variables"]["TICKWORK_CONSOLE_ORIGIN"] = website
    chalice_config.write_text(json.dumps(config))
    said = adopt_console_origin(chalice_config, "dev", STACK_CONSOLE)
    assert _stage_env(chalice_config)["TICKWORK_CONSOLE_ORIGIN"] == STACK_CONSOLE
    assert website in said and "https://" in said


def test_a_stage_without_a_section_gets_one(chalice_config: Path) -> None:
    adopt_console_origin(chalice_config, "prod", STACK_CONSOLE)
    assert _stage_env(chalice_config, "prod") == {"TICKWORK_CONSOLE_ORIGIN": STACK_CONSOLE}
    assert _stage_env(chalice_config, "dev") == {"TICKWORK_STAGE": "dev"}


def test_an_app_wide_origin_counts_as_set(chalice_config: Path) -> None:
    config = json.loads(chalice_config.read_text())
    config["environment_variables"]["TICKWORK_CONSOLE_ORIGIN"] = "https://console.example.com"
    chalice_config.write_text(json.dumps(config))
    adopt_console_origin(chalice_config, "dev", STACK_CONSOLE)
    assert "TICKWORK_CONSOLE_ORIGIN" not in _stage_env(chalice_config)
