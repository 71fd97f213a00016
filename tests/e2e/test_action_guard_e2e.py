"""On the local stack a job's HTTP call never reaches the embedded AWS: a member
who could POST to moto's DynamoDB could read every project's data, or mint
itself an admin token. Loopback opens only to the stack's own API port (or the
host:port entries of TICKWORK_HTTP_ALLOW)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chalicelib.auth.service import hash_secret
from tests.e2e.conftest import LocalStack, free_port
from tests.e2e.test_queue_e2e import result, submit, token

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_action_guard_e2e")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("guard"), free_port())
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def member(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(token(stack, "shop", name="mallory")) as client:
        yield client


#: The admin secret the attack tries to mint.
MINTED = "tw_minted-by-a-job"


def embedded_aws(stack: LocalStack) -> str:
    for line in stack.output:
        found = re.search(r"Embedded AWS \(moto\): (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("the stack did not print its embedded AWS endpoint")


def minted_token_put(secret_hash: str) -> dict[str, Any]:
    """What the attack POSTed: a DynamoDB PutItem of an admin token's row."""
    item = {
        "token_hash": {"S": secret_hash},
        "id": {"S": "tok_minted"},
        "kind": {"S": "token"},
        "project_id": {"S": "default"},
        "role": {"S": "admin"},
        "name": {"S": "minted"},
        "created_ms": {"N": "0"},
    }
    return {
        "method": "POST",
        "headers": {
            "X-Amz-Target": "DynamoDB_20120810.PutItem",
            "Content-Type": "application/x-amz-json-1.0",
        },
        "body": json.dumps({"TableName": "tickwork-local-tokens", "Item": item}),
    }


def test_a_job_cannot_call_the_embedded_aws(stack: LocalStack, member: httpx.Client) -> None:
    endpoint = embedded_aws(stack)
    port = endpoint.rpartition(":")[2]
    attack = minted_token_put(hash_secret(MINTED))
    for url in (endpoint, f"http://localhost:{port}", f"http://0.0.0.0:{port}"):
        made = submit(member, action="http_request", args={"url": url, **attack})
        ended = result(member, made["id"])
        assert ended["status"] == "failed", ended
        assert "embedded AWS" in ended["error"], ended
    # Nothing was written: the secret the attack wanted to mint is unknown.
    with stack.client(MINTED) as minted:
        assert minted.get("/v1/me").status_code == 401


def test_loopback_opens_only_to_the_stacks_own_api_port(
    stack: LocalStack, member: httpx.Client
) -> None:
    own = submit(member, action="http_request", args={"url": f"{stack.url}/health"})
    ended = result(member, own["id"])
    assert ended["status"] == "complete", ended
    assert ended["result"]["status"] == 200
    other = submit(member, action="http_request", args={"url": f"http://127.0.0.1:{free_port()}/"})
    refused = result(member, other["id"])
    assert refused["status"] == "failed"
    assert "loopback address" in refused["error"]
