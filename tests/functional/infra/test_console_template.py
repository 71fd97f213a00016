"""The console in AWS: a private bucket that only the stage's CloudFront
distribution reads (origin access control), served over HTTPS only.

moto's CloudFormation builds the bucket but none of CloudFront, nor the bucket
policy (`moto_cloudformation.py`), so what it cannot build is checked on the
template, resource by resource, and by cfn-lint; moto builds the rest.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cfnlint.api import lint

from chalicelib.settings import console_origin
from infra.console_build import content_security_policy
from infra.resources import template
from tests.functional.moto_cloudformation import buildable_on_moto, referenced

Json = dict[str, Any]


@pytest.fixture
def resources() -> Json:
    found: Json = template("dev")["Resources"]
    return found


def _props(resources: Json, logical: str) -> Json:
    found: Json = resources[logical]["Properties"]
    return found


def test_the_bucket_is_private_and_no_website(resources: Json) -> None:
    bucket = _props(resources, "ConsoleBucket")
    assert "WebsiteConfiguration" not in bucket
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_only_this_stages_distribution_may_read_the_bucket(resources: Json) -> None:
    policy = _props(resources, "ConsoleBucketPolicy")
    assert policy["Bucket"] == {"Ref": "ConsoleBucket"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "ReadByThisStagesDistributionOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${ConsoleBucket.Arn}/*"},
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
                        ":distribution/${ConsoleDistribution}"
                    }
                }
            },
        }
    ]
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_the_distribution_reads_the_bucket_through_origin_access_control(
    resources: Json,
) -> None:
    control = _props(resources, "ConsoleOriginAccessControl")["OriginAccessControlConfig"]
    assert resources["ConsoleOriginAccessControl"]["Type"] == (
        "AWS::CloudFront::OriginAccessControl"
    )
    assert control["OriginAccessControlOriginType"] == "s3"
    assert control["SigningProtocol"] == "sigv4"
    assert control["SigningBehavior"] == "always"
    config = _props(resources, "ConsoleDistribution")["DistributionConfig"]
    [origin] = config["Origins"]
    # The bucket's REST endpoint (the website endpoint would take no signature).
    assert origin["DomainName"] == {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert "CustomOriginConfig" not in origin


def test_viewers_get_https_only_with_security_headers(resources: Json) -> None:
    config = _props(resources, "ConsoleDistribution")["DistributionConfig"]
    assert config["Enabled"] is True
    assert config["DefaultRootObject"] == "index.html"
    behaviors = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    assert {b["ViewerProtocolPolicy"] for b in behaviors} == {"redirect-to-https"}
    assert {b["TargetOriginId"] for b in behaviors} == {config["Origins"][0]["Id"]}
    assert {json.dumps(b["ResponseHeadersPolicyId"]) for b in behaviors} == {
        json.dumps({"Ref": "ConsoleResponseHeadersPolicy"})
    }
    headers = _props(resources, "ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert "ContentTypeOptions" in security
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    header_csp = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "frame-ancestors 'none'" in header_csp


def test_the_header_csp_only_adds_to_the_pages_meta_csp(resources: Json) -> None:
    """Browsers enforce both; the meta names the API's origin, which the
    template cannot know, so the header must not restate a directive of it."""
    headers = _props(resources, "ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    header_csp = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]

    def directives(policy: str) -> set[str]:
        return {part.split()[0] for part in policy.split(";") if part.strip()}

    meta_csp = content_security_policy("https://abc.execute-api.us-east-1.amazonaws.com/api")
    assert directives(header_csp) and not directives(header_csp) & directives(meta_csp)


def test_the_console_url_output_is_an_https_origin_the_api_accepts() -> None:
    output = template("dev")["Outputs"]["ConsoleUrl"]["Value"]
    assert output == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}
    # What CloudFormation makes of it, with a domain of CloudFront's form.
    url = output["Fn::Sub"].replace("${ConsoleDistribution.DomainName}", "d1a2b3c4.cloudfront.net")
    assert console_origin({"TICKWORK_CONSOLE_ORIGIN": url}) == url


def test_the_lint_reports_a_broken_distribution() -> None:
    body = copy.deepcopy(template("dev"))
    config = body["Resources"]["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "https-please"
    body["Resources"]["ConsoleOriginAccessControl"]["Properties"]["OriginAccessControlConfig"][
        "OriginAccessControlOriginType"
    ] = "website"
    found = [str(match) for match in lint(json.dumps(body), regions=["us-east-1"])]
    assert any("https-please" in line for line in found)
    assert any("website" in line for line in found)


def test_moto_builds_the_private_encrypted_bucket(moto_endpoint: str) -> None:
    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, endpoint_url=moto_endpoint, region_name="us-east-1"
        )

    cloudformation, s3 = client("cloudformation"), client("s3")
    body = buildable_on_moto(template("cdn"))
    # Only outputs naming what moto skips are left out; the bucket's stays.
    assert "ConsoleBucketName" in body["Outputs"]
    assert not referenced(body["Outputs"]) - set(body["Resources"])
    cloudformation.create_stack(StackName="tickwork-cdn-infra", TemplateBody=json.dumps(body))
    stack = cloudformation.describe_stacks(StackName="tickwork-cdn-infra")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    bucket = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["ConsoleBucketName"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    with pytest.raises(ClientError, match="NoSuchWebsiteConfiguration"):
        s3.get_bucket_website(Bucket=bucket)
    cloudformation.delete_stack(StackName="tickwork-cdn-infra")
