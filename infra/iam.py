"""Least privilege per function: one IAM policy file per (stage, function).

`python -m infra.iam` (`make policies`) writes `.chalice/policy-<stage>-<function>.json`
for every deployed stage and every function of `infra.resources.FUNCTIONS`;
`.chalice/config.json` names each file as that function's `iam_policy_file`,
so Chalice gives each function its own role. A test fails when the committed
files differ from what this module generates.

What each function may do is the table `NEEDS`, read off the code: the
tables and indexes it reads and writes, the queues it sends to, the queue
its SQS event source reads, and, for the executor, what the configured
actions reach (the stage's environment variables in `.chalice/config.json`,
read through `Settings.from_env`). Every statement names the stage's own
ARNs; region and account come from the stage's `iam_region` and
`iam_account_id` in `.chalice/config.json`. Chalice policy files are plain
JSON (no `${AWS::AccountId}`), so a stage that does not state them gets `*`
in those two ARN fields only (docs/deploy.md, "Roles and permissions").

DynamoDB authorizes a TransactWriteItems by each item's own action (PutItem,
UpdateItem, DeleteItem, ConditionCheckItem), and SQS a SendMessageBatch as
SendMessage: the table lists those actions, not the API calls' names.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from infra.resources import FUNCTIONS, function_name, physical_name

Json = dict[str, Any]

#: The stages `make deploy` deploys (the `local` stage runs on moto, without roles).
DEPLOYED_STAGES = ("dev", "prod")
CONFIG_PATH = Path(".chalice/config.json")


@dataclass(frozen=True)
class Needs:
    """What one function's code calls in AWS."""

    #: DynamoDB actions per logical table, on the table itself.
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Indexes the function queries (dynamodb:Query), per logical table.
    indexes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Logical queues it sends to (SendMessage, SendMessageBatch, and GetQueueUrl
    #: to find them).
    sends_to: tuple[str, ...] = ()
    #: The logical queue of its SQS event source: Lambda reads it with the role.
    consumes: str | None = None
    #: The stage's own functions it invokes (Chalice names).
    invokes: tuple[str, ...] = ()
    #: Whether it runs actions (Bedrock, Lambda, PartiQL as the settings allow).
    runs_actions: bool = False

    def merged(self, other: Needs) -> Needs:
        """Both functions' needs: for code that does what two functions do."""
        tables = {
            name: tuple(sorted({*self.tables.get(name, ()), *other.tables.get(name, ())}))
            for name in {*self.tables, *other.tables}
        }
        indexes = {
            name: tuple(sorted({*self.indexes.get(name, ()), *other.indexes.get(name, ())}))
            for name in {*self.indexes, *other.indexes}
        }
        return Needs(
            tables=tables,
            indexes=indexes,
            sends_to=tuple(sorted({*self.sends_to, *other.sends_to})),
            consumes=self.consumes or other.consumes,
            invokes=tuple(sorted({*self.invokes, *other.invokes})),
            runs_actions=self.runs_actions or other.runs_actions,
        )


#: Ending a job that is not running (a dead letter, an expired approval, a
#: cancel): its terminal write, the task's slot given back, the per-minute
#: counter, the waiting firing or service restart sent on (held for approval
#: when it needs one).
_ENDING_A_JOB = Needs(
    tables={
        "jobs": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        "tasks": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        "approvals": ("dynamodb:PutItem",),
        "metrics": ("dynamodb:UpdateItem",),
    },
    sends_to=("jobs",),
)

#: One shard of the tick (`Tick._fire_shard`): due tasks fired into jobs and
#: messages, due jobs sent again, expired approval requests settled.
_SHARD_WORK = _ENDING_A_JOB.merged(
    Needs(
        tables={
            "tasks": ("dynamodb:UpdateItem",),
            "jobs": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            "approvals": ("dynamodb:UpdateItem",),
        },
        indexes={"tasks": ("due",), "jobs": ("due",), "approvals": ("due",)},
        sends_to=("jobs",),
    )
)

#: Per function (Chalice names). Adding a function is one entry here.
NEEDS: dict[str, Needs] = {
    # The HTTP API: tasks, runs, tokens, queue jobs, approvals, dead letters,
    # metrics and listings; it sends jobs (run now, submit, approve, redrive,
    # a task's first firing within the lookahead) but never receives them and
    # runs no action.
    "api_handler": _ENDING_A_JOB.merged(
        Needs(
            tables={
                "tasks": (
                    "dynamodb:DeleteItem",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ),
                "uniques": ("dynamodb:DeleteItem", "dynamodb:PutItem"),
                "jobs": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
                "approvals": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
                "tokens": ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"),
                "metrics": ("dynamodb:Query", "dynamodb:UpdateItem"),
                "attempts": ("dynamodb:GetItem", "dynamodb:Query"),
            },
            indexes={
                "tasks": ("by_project",),
                "jobs": (
                    "by_action",
                    "by_correlation",
                    "by_project",
                    "by_project_status",
                    "by_resource",
                    "by_status",
                    "by_task",
                    "dead_letters",
                ),
                "approvals": ("by_project_status",),
                "tokens": ("by_id", "by_kind"),
            },
            sends_to=("jobs",),
        )
    ),
    # The minute tick only starts one `tick_shard` invocation per shard
    # (asynchronously, chalicelib/engine/fanout.py); it reads and writes no data.
    "tick": Needs(invokes=("tick_shard",)),
    "tick_shard": _SHARD_WORK,
    # The executor: claims and runs jobs, records results, prunes old runs,
    # holds runs for approval, sends retries and waiting firings on.
    "execute_jobs": _ENDING_A_JOB.merged(
        Needs(
            tables={
                "jobs": (
                    "dynamodb:DeleteItem",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ),
                "tasks": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
                "approvals": ("dynamodb:PutItem",),
                # Each attempt with its log; a pruned run's attempts go with it.
                "attempts": ("dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem"),
            },
            indexes={"jobs": ("by_task",)},
            sends_to=("jobs",),
            consumes="jobs",
            runs_actions=True,
        )
    ),
    # Messages SQS gave up on: their jobs end `failed`.
    # A job whose executor stopped keeps that attempt as `lost`.
    "dead_letters": _ENDING_A_JOB.merged(
        Needs(tables={"attempts": ("dynamodb:PutItem",)}, consumes="jobs-dlq")
    ),
}

#: What Lambda's SQS event source does with the function's role.
EVENT_SOURCE_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")


@dataclass(frozen=True)
class Place:
    """Where a stage runs: the region and account its ARNs name (`*`: any)."""

    region: str = "*"
    account: str = "*"

    def arn(self, service: str, resource: str, *, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account if account else ''}:{resource}"


def policy(function: str, stage: str, settings: Settings, place: Place) -> Json:
    """The IAM policy document of one function of one stage."""
    needs = NEEDS[function]
    statements: list[Json] = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": place.arn(
                "logs", f"log-group:/aws/lambda/{function_name(stage, function)}:*"
            ),
        }
    ]
    for logical in sorted(needs.tables):
        statements.append(
            {
                "Sid": f"{_camel(logical)}Table",
                "Effect": "Allow",
                "Action": sorted(needs.tables[logical]),
                "Resource": place.arn("dynamodb", f"table/{physical_name(stage, logical)}"),
            }
        )
    for logical in sorted(needs.indexes):
        statements.append(
            {
                "Sid": f"{_camel(logical)}Indexes",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [
                    place.arn("dynamodb", f"table/{physical_name(stage, logical)}/index/{index}")
                    for index in sorted(needs.indexes[logical])
                ],
            }
        )
    if needs.sends_to:
        statements.append(
            {
                "Sid": "SendJobs" if needs.sends_to == ("jobs",) else "SendMessages",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
                "Resource": [
                    place.arn("sqs", physical_name(stage, queue)) for queue in needs.sends_to
                ],
            }
        )
    if needs.consumes:
        statements.append(
            {
                "Sid": "EventSource",
                "Effect": "Allow",
                "Action": list(EVENT_SOURCE_ACTIONS),
                "Resource": place.arn("sqs", physical_name(stage, needs.consumes)),
            }
        )
    if needs.invokes:
        statements.append(
            {
                "Sid": "InvokeOwnFunctions",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": [
                    place.arn("lambda", f"function:{function_name(stage, name)}")
                    for name in needs.invokes
                ],
            }
        )
    if needs.runs_actions:
        statements += action_statements(settings, place)
    return {"Version": "2012-10-17", "Statement": statements}


def action_statements(settings: Settings, place: Place) -> list[Json]:
    """What the configured actions reach: only what the operator allowed."""
    statements: list[Json] = []
    models = [m for m in (settings.ai_model, *settings.ai_models) if m]
    if settings.ai_provider == "bedrock" and models:
        statements.append(
            {
                "Sid": "BedrockModels",
                "Effect": "Allow",
                # Converse is authorized as InvokeModel.
                "Action": ["bedrock:InvokeModel"],
                "Resource": [_model_arn(model, place) for model in dict.fromkeys(models)],
            }
        )
    if settings.invoke_functions:
        statements.append(
            {
                "Sid": "InvokeLambda",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                # The function itself and its versions and aliases (`name:qualifier`).
                "Resource": [
                    arn
                    for name in settings.invoke_functions
                    for base in [_function_arn(name, place)]
                    for arn in (base, f"{base}:*")
                ],
            }
        )
    if settings.query_tables:
        statements.append(
            {
                "Sid": "QueryTables",
                "Effect": "Allow",
                "Action": ["dynamodb:PartiQLSelect"],
                # `run_query` may read a table or one of its indexes (`FROM t.index`).
                "Resource": [
                    arn
                    for table in settings.query_tables
                    for arn in (
                        place.arn("dynamodb", f"table/{table}"),
                        place.arn("dynamodb", f"table/{table}/index/*"),
                    )
                ],
            }
        )
    return statements


def _model_arn(model: str, place: Place) -> str:
    """A Bedrock model id as its foundation-model ARN (no account in it); an ARN
    (an inference profile, a provisioned model) is taken as it is."""
    if model.startswith("arn:"):
        return model
    return place.arn("bedrock", f"foundation-model/{model}", account=False)


def _function_arn(name: str, place: Place) -> str:
    if name.startswith("arn:"):
        return name
    return place.arn("lambda", f"function:{name}")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def stage_environment(config: Json, stage: str) -> dict[str, str]:
    """The environment variables Chalice gives the stage's functions (its
    top-level ones, overridden by the stage's)."""
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def stage_place(config: Json, stage: str) -> Place:
    stage_config = config["stages"][stage]
    return Place(
        region=stage_config.get("iam_region", "*"), account=stage_config.get("iam_account_id", "*")
    )


def policy_file(stage: str, function: str) -> str:
    """The file name `.chalice/config.json` gives as the function's `iam_policy_file`."""
    return f"policy-{stage}-{function}.json"


def policies(config: Json) -> dict[str, Json]:
    """Every policy file of the deployed stages, by file name."""
    found: dict[str, Json] = {}
    for stage in DEPLOYED_STAGES:
        settings = Settings.from_env({**stage_environment(config, stage), "TICKWORK_STAGE": stage})
        place = stage_place(config, stage)
        for function in FUNCTIONS:
            found[policy_file(stage, function)] = policy(function, stage, settings, place)
    return found


def render(document: Json) -> str:
    return json.dumps(document, indent=2) + "\n"


def write(directory: Path = CONFIG_PATH.parent) -> list[Path]:
    config = json.loads((directory / CONFIG_PATH.name).read_text())
    written = []
    for name, document in policies(config).items():
        path = directory / name
        path.write_text(render(document))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path, file=sys.stderr)
