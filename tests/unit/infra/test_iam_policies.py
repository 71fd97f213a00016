"""The committed per-function IAM policies are what `infra.iam` generates, and
each function's role names only its stage's own resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import Settings
from infra import iam
from infra.resources import FUNCTIONS

CHALICE_DIR = Path(__file__).resolve().parents[3] / ".chalice"


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHALICE_DIR / "config.json").read_text())
    return loaded


def resources(document: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in document["Statement"]:
        value = statement["Resource"]
        found += value if isinstance(value, list) else [value]
    return found


def actions(document: dict[str, Any]) -> set[str]:
    return {action for statement in document["Statement"] for action in statement["Action"]}


def test_the_committed_policy_files_are_the_generated_ones() -> None:
    generated = iam.policies(config())
    committed = {path.name for path in CHALICE_DIR.glob("policy-*.json")}
    assert committed == set(generated), "run `make policies`"
    for name, document in generated.items():
        assert (CHALICE_DIR / name).read_text() == iam.render(document), (
            f"{name} is stale: run `make policies`"
        )


@pytest.mark.parametrize("stage", iam.DEPLOYED_STAGES)
def test_each_function_of_a_stage_has_its_own_policy_file(stage: str) -> None:
    stage_config = config()["stages"][stage]
    assert "iam_policy_file" not in stage_config  # no role shared by every function
    assert {
        name: fn["iam_policy_file"] for name, fn in stage_config["lambda_functions"].items()
    } == {name: iam.policy_file(stage, name) for name in FUNCTIONS}


def test_every_function_has_an_entry_in_the_needs_table() -> None:
    assert set(FUNCTIONS) <= set(iam.NEEDS)


@pytest.mark.parametrize("name", sorted(iam.policies(config())))
def test_every_statement_names_the_stages_own_resources(name: str) -> None:
    stage = name.split("-")[1]
    for resource in resources(json.loads((CHALICE_DIR / name).read_text())):
        assert resource != "*"
        assert f"tickwork-{stage}" in resource, resource


def test_only_the_executor_reaches_what_actions_need() -> None:
    settings = Settings(
        stage="dev",
        ai_model="anthropic.claude-3-haiku-20240307-v1:0",
        invoke_functions=("reports",),
        query_tables=("sales",),
    )
    place = iam.Place("eu-west-1", "111122223333")
    executor = iam.policy("execute_jobs", "dev", settings, place)
    assert {"bedrock:InvokeModel", "lambda:InvokeFunction", "dynamodb:PartiQLSelect"} <= actions(
        executor
    )
    assert set(resources(executor)) >= {
        "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:lambda:eu-west-1:111122223333:function:reports",
        "arn:aws:lambda:eu-west-1:111122223333:function:reports:*",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/sales",
    }
    for other in ("api_handler", "tick", "tick_shard", "dead_letters"):
        document = iam.policy(other, "dev", settings, place)
        assert "bedrock:InvokeModel" not in actions(document)
        assert "dynamodb:PartiQLSelect" not in actions(document)
        assert "sqs:ReceiveMessage" not in actions(document) or other == "dead_letters"
        invoked = {
            resource
            for statement in document["Statement"]
            if "lambda:InvokeFunction" in statement["Action"]
            for resource in statement["Resource"]
        }
        # The tick invokes its own shard passes, and nothing an action may call.
        expected = {"arn:aws:lambda:eu-west-1:111122223333:function:tickwork-dev-tick_shard"}
        assert invoked == (expected if other == "tick" else set())


def test_the_tick_only_starts_shard_passes() -> None:
    document = iam.policy("tick", "dev", Settings(stage="dev"), iam.Place())
    assert actions(document) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "lambda:InvokeFunction",
    }


def test_the_api_never_receives_jobs_nor_runs_actions() -> None:
    document = iam.policy("api_handler", "dev", Settings(stage="dev"), iam.Place())
    assert "sqs:ReceiveMessage" not in actions(document)
    assert all(a.split(":")[0] in ("logs", "dynamodb", "sqs") for a in actions(document))
