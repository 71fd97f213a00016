"""moto with IAM enforced the way AWS authorizes Tickwork's calls.

moto checks each signed request against the caller's IAM policies once
enforcement is on (`moto.core.enable_iam_authentication`), but it names the
IAM action after the API call and checks DynamoDB and Lambda calls against
the resource `*`. AWS does otherwise, and a policy written for AWS would fail
(or pass) on moto for the wrong reasons. `authorize_like_aws` makes moto
check, for every request, what AWS's Service Authorization Reference says:

- DynamoDB: the table's ARN, or the index's for a Query on an index; a
  TransactWriteItems as each item's own action on its own table (PutItem,
  UpdateItem, DeleteItem, ConditionCheckItem); an ExecuteStatement as
  PartiQLSelect (Insert, Update, Delete) on the table or index it names.
- SQS: the queue's ARN, also for GetQueueUrl; a batch call as its single
  action (SendMessageBatch is sqs:SendMessage).
- Lambda: Invoke as lambda:InvokeFunction on the function's ARN (with its
  qualifier).

Checking stays moto's own (`IAMRequest`: the signature, then the policies);
only the (action, resource) pairs it checks are AWS's. Every refusal is kept
in `Denials`, so a test sees refusals the application caught and handled.

moto has no Bedrock Runtime. `BedrockStandIn` answers Converse in front of
moto, after asking moto's IAM whether the caller's policies allow
bedrock:InvokeModel on the model's ARN (it does not check the signature).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
from moto.core.responses import BaseResponse
from moto.iam.access_control import IAMPolicy, IAMUserAccessKey, PermissionResult
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

#: moto's default account.
ACCOUNT = "123456789012"

#: (IAM action without its service prefix, resource ARN)
Check = tuple[str, str]

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
_PARTIQL_TARGET = re.compile(
    r'\b(?:FROM|INTO|UPDATE)\s+("(?:[^"]|"")+"|[A-Za-z0-9_.-]+)(?:\."((?:[^"]|"")+)"|\.([A-Za-z0-9_.-]+))?',
    re.IGNORECASE,
)
_ITEM_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}
_SQS_SINGLE = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def dynamodb_checks(operation: str, params: dict[str, Any], region: str) -> list[Check]:
    def arn(table: str, index: str | None = None) -> str:
        base = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
        return f"{base}/index/{index}" if index else base

    if operation == "TransactWriteItems":
        return [
            (_ITEM_ACTIONS[kind], arn(item["TableName"]))
            for entry in params["TransactItems"]
            for kind, item in entry.items()
        ]
    if operation == "TransactGetItems":
        return [("GetItem", arn(entry["Get"]["TableName"])) for entry in params["TransactItems"]]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(operation, arn(table)) for table in params["RequestItems"]]
    if operation == "ExecuteStatement":
        statement = params["Statement"]
        verb = statement.split(None, 1)[0].capitalize()
        target = _PARTIQL_TARGET.search(statement)
        if target is None:
            return [(f"PartiQL{verb}", "*")]
        table = target.group(1).strip('"').replace('""', '"')
        index = target.group(2) or target.group(3)
        return [(f"PartiQL{verb}", arn(table, index))]
    if "TableName" in params:
        return [(operation, arn(params["TableName"], params.get("IndexName")))]
    return [(operation, "*")]


def sqs_checks(operation: str, queue_name: str | None, region: str) -> list[Check]:
    resource = f"arn:aws:sqs:{region}:{ACCOUNT}:{queue_name}" if queue_name else "*"
    return [(_SQS_SINGLE.get(operation, operation), resource)]


def lambda_checks(operation: str, path: str, qualifier: str | None, region: str) -> list[Check]:
    if operation != "Invoke":
        return [(operation, "*")]
    name = unquote(path.rstrip("/").split("/")[-2])
    if not name.startswith("arn:"):
        name = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    return [("InvokeFunction", f"{name}:{qualifier}" if qualifier else name)]


@dataclass(frozen=True)
class Denial:
    access_key: str
    action: str
    resource: str


@dataclass
class Denials:
    """Every request moto (or the Bedrock stand-in) refused."""

    seen: list[Denial] = field(default_factory=list)

    def of(self, access_key: str) -> list[Denial]:
        return [d for d in self.seen if d.access_key == access_key]


def _credential(authorization: str) -> tuple[str, str, str]:
    """(access key id, region, service) of a SigV4 Authorization header."""
    match = _CREDENTIAL.search(authorization or "")
    return match.groups() if match else ("", "us-east-1", "")  # type: ignore[return-value]


def _checks_of(response: Any) -> list[Check] | None:
    """AWS's (action, resource) pairs for the request a moto handler holds."""
    operation = response._get_action()
    _, region, _ = _credential(response.headers.get("Authorization", ""))
    service = response.service_name
    if service == "dynamodb":
        return dynamodb_checks(operation, getattr(response, "body", None) or {}, region)
    if service == "sqs":
        url = response._get_param("QueueUrl")
        name = url.rstrip("/").split("/")[-1] if url else response._get_param("QueueName")
        return sqs_checks(operation, name, region)
    if service == "awslambda":
        qualifier = (response.querystring.get("Qualifier") or [None])[0]
        return lambda_checks(operation, response.path, qualifier, region)
    return None


def authorize_like_aws(monkeypatch: pytest.MonkeyPatch, denials: Denials) -> None:
    """Make moto (in this process) check AWS's actions and resources, keeping refusals."""
    moto_check = BaseResponse._authenticate_and_authorize_normal_action

    def check(self: Any, resource: str = "*") -> None:
        checks = _checks_of(self) or [(self._get_action(), resource)]
        for action, arn in checks:
            # IAMRequest takes the action from `_get_action`; dispatch needs the
            # real one back before the handler runs.
            self._get_action = lambda action=action: action
            try:
                moto_check(self, arn)
            except Exception:
                key, _, service = _credential(self.headers.get("Authorization", ""))
                denials.seen.append(Denial(key, f"{service}:{action}", arn))
                raise
            finally:
                del self._get_action

    monkeypatch.setattr(BaseResponse, "_authenticate_and_authorize_normal_action", check)


def principal_may(access_key: str, action: str, resource: str) -> bool:
    """moto's IAM evaluation of one (action, resource) for an access key's user."""
    policies = IAMUserAccessKey(
        account_id=ACCOUNT, partition="aws", access_key_id=access_key, headers={}
    ).collect_policies()
    results = [IAMPolicy(p).is_action_permitted(action, resource) for p in policies]
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BedrockStandIn:
    """Bedrock Runtime's Converse (POST /model/{modelId}/converse) in front of
    moto: allowed callers get `answer`, others 403 AccessDeniedException."""

    def __init__(self, moto: WsgiApp, denials: Denials, answer: str) -> None:
        self._moto = moto
        self._denials = denials
        self.answer = answer
        self.models_asked: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key, region, service = _credential(environ.get("HTTP_AUTHORIZATION", ""))
        if service != "bedrock":
            return self._moto(environ, start_response)
        model = unquote(environ["PATH_INFO"].split("/")[2])
        arn = (
            model
            if model.startswith("arn:")
            else (f"arn:aws:bedrock:{region}::foundation-model/{model}")
        )
        self.models_asked.append(model)
        if not principal_may(key, "bedrock:InvokeModel", arn):
            self._denials.seen.append(Denial(key, "bedrock:InvokeModel", arn))
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "AccessDeniedException"),
                ],
            )
            return [
                json.dumps(
                    {"message": f"not authorized to perform bedrock:InvokeModel on {arn}"}
                ).encode()
            ]
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": self.answer}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
            "metrics": {"latencyMs": 1},
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


class EnforcingMotoServer(ThreadedMotoServer):
    """A moto server of its own, with the Bedrock stand-in in front."""

    def __init__(self, denials: Denials, bedrock_answer: str) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.bedrock = BedrockStandIn(
            DomainDispatcherApplication(create_backend_app), denials, bedrock_answer
        )

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.bedrock, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
