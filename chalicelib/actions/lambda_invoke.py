"""`invoke_lambda`: invoke an AWS Lambda function (DESIGN §6).

Which functions a job may invoke is decided by the executor's IAM role
(`lambda:InvokeFunction` on the ARNs the operator grants). A function that
raised (`FunctionError`) fails the run with its error type and message.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.actions import aws
from chalicelib.actions.base import Action, ActionContext, ActionFailed

#: Lambda runs up to 15 minutes; the run's own timeout still bounds the wait.
READ_TIMEOUT_S = 900


class InvokeLambdaArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function_name: str = Field(
        min_length=1, max_length=170, description="Name, ARN or partial ARN, with :qualifier."
    )
    payload: Any = Field(default_factory=dict, description="The event, any JSON value.")
    invocation_type: Literal["RequestResponse", "Event", "DryRun"] = "RequestResponse"


def decode_payload(raw: bytes) -> Any:
    """A function's answer: JSON when it is JSON, else text, None when empty."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def invoke_lambda(ctx: ActionContext, args: InvokeLambdaArgs) -> Any:
    # One attempt: a retry after a lost answer would run the function twice.
    client = aws.client(ctx.settings, "lambda", read_timeout_s=READ_TIMEOUT_S, max_attempts=1)
    with aws.failing_as(f"invoking {args.function_name}"):
        response = client.invoke(
            FunctionName=args.function_name,
            InvocationType=args.invocation_type,
            Payload=json.dumps(args.payload).encode(),
        )
        raw = response["Payload"].read()
    payload = decode_payload(raw)
    status = response["StatusCode"]
    ctx.log.info(f"{args.function_name} ({args.invocation_type}) -> {status}")
    if response.get("FunctionError"):
        detail = payload if isinstance(payload, str) else _error_text(payload)
        raise ActionFailed(
            f"{args.function_name} failed ({response['FunctionError']}): {detail}"[:2000]
        )
    result: dict[str, Any] = {"status_code": status, "payload": payload}
    if response.get("ExecutedVersion"):
        result["executed_version"] = response["ExecutedVersion"]
    return result


def _error_text(payload: Any) -> str:
    """`errorType: errorMessage` of a Lambda error payload, or the payload as JSON."""
    if isinstance(payload, dict) and "errorMessage" in payload:
        kind = payload.get("errorType")
        return f"{kind}: {payload['errorMessage']}" if kind else str(payload["errorMessage"])
    return json.dumps(payload)


ACTION = Action(
    "invoke_lambda",
    InvokeLambdaArgs,
    invoke_lambda,
    "Invokes a Lambda function; fails if the function raised.",
)
