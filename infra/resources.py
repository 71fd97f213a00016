"""The one definition of Tickwork's AWS resources.

Tables, indexes, queues, the dead-letter queue, the console (a private
bucket behind CloudFront), the alarms and the functions' log groups are
declared here once, as CloudFormation resources. `template(stage)` is what `make deploy` hands to
CloudFormation; the local stack provisions moto from the very same resource
properties (`infra.local`), and a test checks the PynamoDB models in
`chalicelib/storage/tables.py` against them,
so the three cannot drift apart.

Naming: every physical name is `tickwork-<stage>-<logical name>`; the
application derives the same names from `TICKWORK_STAGE` (see
`chalicelib.settings`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

Json = dict[str, Any]

#: Seconds a received job message stays invisible before SQS redelivers it:
#: six times the executor's Lambda timeout (900 s), AWS's guidance for an SQS
#: event source (tests/unit/infra/test_lambda_fit.py checks it against the config).
JOBS_VISIBILITY_TIMEOUT_S = 6 * 900
#: Receives after which SQS moves a message to the dead-letter queue.
JOBS_MAX_RECEIVE_COUNT = 5
#: Non-key attributes the jobs table's stage-wide listing indexes copy
#: (`chalicelib.storage.tables.LISTING_ATTRIBUTES` names the same).
JOB_LISTING_ATTRIBUTES = ["project_id", "action", "status", "resource_id", "result", "error"]
#: Tables CloudFormation keeps when the stack is deleted or a change would
#: replace them: the records users made (tasks, runs and their attempts,
#: approvals, tokens) and the
#: uniqueness claims written in the same transactions as tasks and queue jobs
#: (restored without them, the data would accept a second task of the same
#: name). `metrics` is not kept: per-minute counters that expire by TTL.
RETAINED_TABLES = ("tasks", "jobs", "attempts", "approvals", "tokens", "uniques")
#: Days CloudWatch Logs keeps each function's log lines.
LOG_RETENTION_DAYS = 30
#: The Lambda functions of `app.py` by their Chalice names. `chalice deploy`
#: names a function `tickwork-<stage>-<name>` and the API handler
#: `tickwork-<stage>` (`function_name`); a test checks this against the app.
FUNCTIONS = ("api_handler", "tick", "tick_shard", "execute_jobs", "dead_letters")


def _gsi(
    name: str,
    hash_key: str,
    range_key: str | None = None,
    projection: str = "ALL",
    *,
    include: list[str] | None = None,
) -> Json:
    """A global secondary index; `include` makes it an INCLUDE projection of those attributes."""
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    if include:
        return {
            "IndexName": name,
            "KeySchema": schema,
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(include)},
        }
    return {"IndexName": name, "KeySchema": schema, "Projection": {"ProjectionType": projection}}


def _table(
    logical: str,
    stage: str,
    hash_key: str,
    attributes: dict[str, str],
    *,
    range_key: str | None = None,
    indexes: list[Json] | None = None,
    ttl_attribute: str | None = None,
) -> Json:
    """A pay-per-request table with point-in-time recovery and encryption at
    rest under the AWS managed key `alias/aws/dynamodb` (no key of ours, no key
    policy to keep); the tables of RETAINED_TABLES outlive their stack."""
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    props: Json = {
        "TableName": physical_name(stage, logical),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in attributes.items()
        ],
        "KeySchema": schema,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
    }
    if indexes:
        props["GlobalSecondaryIndexes"] = indexes
    if ttl_attribute:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl_attribute, "Enabled": True}
    resource: Json = {"Type": "AWS::DynamoDB::Table", "Properties": props}
    if logical in RETAINED_TABLES:
        resource["DeletionPolicy"] = "Retain"
        resource["UpdateReplacePolicy"] = "Retain"
    return resource


def physical_name(stage: str, logical: str) -> str:
    """Physical name of a table or queue: `tickwork-<stage>-<logical>`."""
    return f"tickwork-{stage}-{logical}"


def tables(stage: str) -> dict[str, Json]:
    """CloudFormation resources of every table, keyed by logical table name."""
    return {
        # Scheduled tasks. `by_project` lists a project's tasks by name;
        # `due` is sparse: only enabled tasks with a next firing carry
        # `due_shard`, so the tick's Query reads due tasks and nothing else.
        "tasks": _table(
            "tasks",
            stage,
            "id",
            {"id": "S", "project_id": "S", "name": "S", "due_shard": "S", "next_run_ms": "N"},
            indexes=[
                _gsi("by_project", "project_id", "name"),
                _gsi("due", "due_shard", "next_run_ms"),
            ],
        ),
        # Jobs (runs). `by_task` serves a task's runs newest first;
        # `by_project` and `by_project_status` serve the queue listings and
        # counts; `by_correlation` serves correlation lookups; `due` (sparse)
        # holds jobs waiting in DynamoDB for a defer time or a long retry delay;
        # `dead_letters` (sparse) holds jobs whose message was dead-lettered.
        # `by_status`, `by_action` and `by_resource` are stage-wide, newest
        # `timestamp_ms` first, for the Synapse admin listing (docs/api-synapse.md):
        # the first two spread each status or action over a few partitions
        # (`<value>#<shard>`); all three copy only a job's summary, so writes of
        # `args` or logs do not touch them.
        "jobs": _table(
            "jobs",
            stage,
            "id",
            {
                "id": "S",
                "task_id": "S",
                "project_id": "S",
                "project_status": "S",
                "project_correlation": "S",
                "created_ms": "N",
                "scheduled_ms": "N",
                "due_shard": "S",
                "due_ms": "N",
                "dead_letter_key": "S",
                "dead_lettered_ms": "N",
                "status_shard": "S",
                "action_shard": "S",
                "resource_id": "S",
                "timestamp_ms": "N",
            },
            indexes=[
                _gsi("by_task", "task_id", "scheduled_ms"),
                _gsi("by_project", "project_id", "created_ms"),
                _gsi("by_project_status", "project_status", "created_ms"),
                _gsi("by_correlation", "project_correlation", "created_ms"),
                _gsi("due", "due_shard", "due_ms"),
                _gsi("dead_letters", "dead_letter_key", "dead_lettered_ms"),
                _gsi("by_status", "status_shard", "timestamp_ms", include=JOB_LISTING_ATTRIBUTES),
                _gsi("by_action", "action_shard", "timestamp_ms", include=JOB_LISTING_ATTRIBUTES),
                _gsi("by_resource", "resource_id", "timestamp_ms", include=JOB_LISTING_ATTRIBUTES),
            ],
            ttl_attribute="expires_at_s",
        ),
        # Every attempt of a job (start, end, outcome, error, log), read by the
        # job's key; no index, so a log is written once. Expires with its job.
        "attempts": _table(
            "attempts",
            stage,
            "job_id",
            {"job_id": "S", "attempt": "N"},
            range_key="attempt",
            ttl_attribute="expires_at_s",
        ),
        # Human approval requests: listed per project and status; the sparse
        # `due` index finds pending requests whose approval window ran out.
        "approvals": _table(
            "approvals",
            stage,
            "id",
            {
                "id": "S",
                "project_status": "S",
                "requested_ms": "N",
                "due_shard": "S",
                "expires_ms": "N",
            },
            indexes=[
                _gsi("by_project_status", "project_status", "requested_ms"),
                _gsi("due", "due_shard", "expires_ms"),
            ],
            ttl_attribute="expires_at_s",
        ),
        # API tokens, keyed by the SHA-256 of the secret so authentication is
        # one consistent GetItem; `by_id` finds a token to revoke, `by_kind`
        # lists them all (a handful of items) without a Scan.
        "tokens": _table(
            "tokens",
            stage,
            "token_hash",
            {"token_hash": "S", "id": "S", "kind": "S", "created_ms": "N"},
            indexes=[_gsi("by_id", "id"), _gsi("by_kind", "kind", "created_ms")],
        ),
        # Per-minute counters and latency histograms, updated atomically.
        "metrics": _table(
            "metrics",
            stage,
            "pk",
            {"pk": "S", "sk": "S"},
            range_key="sk",
            ttl_attribute="expires_at_s",
        ),
        # Uniqueness claims (a task name per project, a queue job id per
        # project): written in the same transaction as the item that owns them.
        "uniques": _table("uniques", stage, "key", {"key": "S"}),
    }


def queues(stage: str) -> dict[str, Json]:
    """CloudFormation resources of the jobs queue and its dead-letter queue.

    Both are encrypted at rest with SQS-managed keys (SSE-SQS): free, and no
    KMS key policy has to let SQS, Lambda and the senders use a key."""
    return {
        "JobsDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": physical_name(stage, "jobs-dlq"),
                "MessageRetentionPeriod": 1209600,
                "SqsManagedSseEnabled": True,
            },
        },
        "JobsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": physical_name(stage, "jobs"),
                "VisibilityTimeout": JOBS_VISIBILITY_TIMEOUT_S,
                "MessageRetentionPeriod": 1209600,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": JOBS_MAX_RECEIVE_COUNT,
                },
            },
        },
    }


def function_name(stage: str, name: str) -> str:
    """The Lambda function `chalice deploy` creates for Chalice function `name`."""
    return f"tickwork-{stage}" if name == "api_handler" else f"tickwork-{stage}-{name}"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def log_groups(stage: str) -> dict[str, Json]:
    """A log group per function, so its lines expire after LOG_RETENTION_DAYS
    (Lambda's own groups keep them forever). Created before `chalice deploy`
    makes the functions; a group Lambda created already makes the stack fail
    (docs/deploy.md says what to do)."""
    return {
        f"{_camel(name)}LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            # Stated, not defaulted: CloudFormation imports only resources that
            # state one, and importing is how a group Lambda made joins the stack.
            "DeletionPolicy": "Delete",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{function_name(stage, name)}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        for name in FUNCTIONS
    }


#: The stack's parameter naming the SNS topic the alarms notify (empty: none);
#: `make deploy` passes TICKWORK_ALARM_TOPIC_ARN (infra.deploy).
ALARM_TOPIC = "AlarmTopicArn"
_HAS_ALARM_TOPIC = "HasAlarmTopic"


def _alarm(name: str, description: str, namespace: str, metric: str, dimension: Json) -> Json:
    """An alarm that fires when one minute's `metric` goes above zero."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [dimension],
            "Statistic": "Maximum" if namespace == "AWS/SQS" else "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            # The operator's SNS topic, when the stack was given one (ALARM_TOPIC).
            "AlarmActions": {
                "Fn::If": [_HAS_ALARM_TOPIC, [{"Ref": ALARM_TOPIC}], {"Ref": "AWS::NoValue"}]
            },
            "OKActions": {
                "Fn::If": [_HAS_ALARM_TOPIC, [{"Ref": ALARM_TOPIC}], {"Ref": "AWS::NoValue"}]
            },
        },
    }


def alarms(stage: str) -> dict[str, Json]:
    """Dead letters waiting, a tick or shard pass that failed, an executor Lambda throttled."""
    return {
        "DeadLetterAlarm": _alarm(
            physical_name(stage, "dead-letters"),
            "Jobs reached the dead-letter queue.",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]}},
        ),
        "TickErrorsAlarm": _alarm(
            physical_name(stage, "tick-errors"),
            "A tick invocation failed: firings of that minute may be late.",
            "AWS/Lambda",
            "Errors",
            {"Name": "FunctionName", "Value": function_name(stage, "tick")},
        ),
        "TickShardErrorsAlarm": _alarm(
            physical_name(stage, "tick-shard-errors"),
            "A shard's pass of the tick failed or timed out: its firings wait for the next tick.",
            "AWS/Lambda",
            "Errors",
            {"Name": "FunctionName", "Value": function_name(stage, "tick_shard")},
        ),
        "ExecutorThrottlesAlarm": _alarm(
            physical_name(stage, "executor-throttles"),
            "Lambda throttled the executor: jobs wait in the queue.",
            "AWS/Lambda",
            "Throttles",
            {"Name": "FunctionName", "Value": function_name(stage, "execute_jobs")},
        ),
    }


#: CloudFront's managed cache policy "CachingOptimized" (AWS publishes its id).
#: With the `Cache-Control: no-cache` the upload puts on every file, edges keep
#: a file for the policy's minimum TTL (1 s) and then revalidate with S3, so a
#: new build is live within a second and no invalidation is needed.
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
#: Seconds browsers keep to HTTPS for the console's host once they saw it (two years).
HSTS_MAX_AGE_S = 63_072_000
#: What the header adds to the console's CSP. The rest of the policy is the
#: `<meta>` in every page (docs/console.md), which knows the API's origin; the
#: template is deployed before the API exists. Browsers enforce both policies,
#: and `frame-ancestors` works only in a header.
CONSOLE_HEADER_CSP = "frame-ancestors 'none'"


def console(stage: str) -> dict[str, Json]:
    """The web console: a private bucket that only the stage's CloudFront
    distribution may read (origin access control, SigV4-signed requests), served
    over HTTPS only. The files hold no secret, but admins type tokens into the
    pages, so the pages must arrive unaltered: S3 website endpoints speak HTTP
    only. `infra.deploy --console` uploads the build."""
    bucket_arn = {"Fn::GetAtt": ["ConsoleBucket", "Arn"]}
    return {
        "ConsoleBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                # SSE-S3: CloudFront's origin access control reads it as is; a KMS
                # key would need a key policy for CloudFront.
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
            },
        },
        "ConsoleBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "ConsoleBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadByThisStagesDistributionOnly",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudfront.amazonaws.com"},
                            "Action": "s3:GetObject",
                            "Resource": {"Fn::Sub": "${ConsoleBucket.Arn}/*"},
                            "Condition": {
                                "StringEquals": {
                                    "AWS:SourceArn": {
                                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::"
                                        "${AWS::AccountId}:distribution/${ConsoleDistribution}"
                                    }
                                }
                            },
                        },
                        {
                            "Sid": "NoPlainHttp",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket_arn, {"Fn::Sub": "${ConsoleBucket.Arn}/*"}],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
        "ConsoleOriginAccessControl": {
            "Type": "AWS::CloudFront::OriginAccessControl",
            "Properties": {
                "OriginAccessControlConfig": {
                    "Name": physical_name(stage, "console"),
                    "Description": f"CloudFront reads the Tickwork {stage} console bucket",
                    "OriginAccessControlOriginType": "s3",
                    "SigningBehavior": "always",
                    "SigningProtocol": "sigv4",
                }
            },
        },
        "ConsoleResponseHeadersPolicy": {
            "Type": "AWS::CloudFront::ResponseHeadersPolicy",
            "Properties": {
                "ResponseHeadersPolicyConfig": {
                    "Name": physical_name(stage, "console"),
                    "Comment": "Security headers of the Tickwork console (docs/console.md)",
                    "SecurityHeadersConfig": {
                        "ContentSecurityPolicy": {
                            "ContentSecurityPolicy": CONSOLE_HEADER_CSP,
                            "Override": True,
                        },
                        "ContentTypeOptions": {"Override": True},
                        "FrameOptions": {"FrameOption": "DENY", "Override": True},
                        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
                        "StrictTransportSecurity": {
                            "AccessControlMaxAgeSec": HSTS_MAX_AGE_S,
                            "IncludeSubdomains": False,
                            "Override": True,
                        },
                    },
                }
            },
        },
        "ConsoleDistribution": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Comment": f"Tickwork {stage} console",
                    "Enabled": True,
                    "HttpVersion": "http2and3",
                    "DefaultRootObject": "index.html",
                    "Origins": [
                        {
                            "Id": "console-bucket",
                            "DomainName": {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]},
                            # Empty: the bucket is reached through the origin access
                            # control, not a legacy origin access identity.
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                            "OriginAccessControlId": {
                                "Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]
                            },
                        }
                    ],
                    "DefaultCacheBehavior": {
                        "TargetOriginId": "console-bucket",
                        "ViewerProtocolPolicy": "redirect-to-https",
                        "AllowedMethods": ["GET", "HEAD"],
                        "CachedMethods": ["GET", "HEAD"],
                        "Compress": True,
                        "CachePolicyId": CACHING_OPTIMIZED_POLICY_ID,
                        "ResponseHeadersPolicyId": {"Ref": "ConsoleResponseHeadersPolicy"},
                    },
                    # The bucket answers 403 for a key it does not have (CloudFront
                    # may not list it); like the S3 website's error document, an
                    # unknown page shows the dashboard, with status 404.
                    "CustomErrorResponses": [
                        {
                            "ErrorCode": code,
                            "ResponseCode": 404,
                            "ResponsePagePath": "/index.html",
                            "ErrorCachingMinTTL": 10,
                        }
                        for code in (403, 404)
                    ],
                    "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
                }
            },
        },
    }


def table_resource_id(logical: str) -> str:
    """CloudFormation logical id of a table, e.g. `TasksTable`."""
    return f"{logical.capitalize()}Table"


def template(stage: str) -> Json:
    """The whole CloudFormation template for one stage."""
    resources: Json = {table_resource_id(name): res for name, res in tables(stage).items()}
    resources.update(queues(stage))
    resources.update(console(stage))
    resources.update(alarms(stage))
    resources.update(log_groups(stage))
    outputs = {
        "JobsQueueUrl": {"Value": {"Ref": "JobsQueue"}},
        "JobsDeadLetterQueueUrl": {"Value": {"Ref": "JobsDeadLetterQueue"}},
        "ConsoleBucketName": {"Value": {"Ref": "ConsoleBucket"}},
        "ConsoleDistributionId": {"Value": {"Ref": "ConsoleDistribution"}},
        # The console's origin: what `infra.deploy` sets TICKWORK_CONSOLE_ORIGIN to.
        "ConsoleUrl": {"Value": {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}},
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Tickwork tables, queues, console (CloudFront) and alarms ({stage})",
        "Parameters": {
            ALARM_TOPIC: {
                "Type": "String",
                "Default": "",
                "Description": "ARN of an SNS topic the alarms notify (empty: none)",
            }
        },
        "Conditions": {_HAS_ALARM_TOPIC: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


if __name__ == "__main__":
    # `python -m infra.resources STAGE`: the template as JSON (`make cfn-lint`).
    print(json.dumps(template(sys.argv[1] if len(sys.argv) > 1 else "dev"), indent=2))
