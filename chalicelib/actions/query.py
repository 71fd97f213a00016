"""`run_query`: a read-only PartiQL SELECT on an allowed DynamoDB table (DESIGN §6).

The statement is checked by `partiql.check_select` before it is sent, and
the table must be in the operator's `TICKWORK_QUERY_TABLES`. Rows come back
as plain JSON (DynamoDB's typed values turned into numbers, strings, lists,
objects), at most `limit` of them, and a short rendering can be posted to a
room through `post_to_room`.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.actions import aws
from chalicelib.actions.base import Action, ActionContext, ActionFailed
from chalicelib.actions.partiql import check_select
from chalicelib.actions.rooms import post_to_room

#: Rows a job may ask for; the stored result caps at 64 KiB anyway.
MAX_ROWS = 1000
#: Rows shown in a room message.
ROWS_POSTED = 10


class RunQueryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: str = Field(
        min_length=1, max_length=8192, description="One PartiQL SELECT on an allowed table."
    )
    parameters: list[Any] | None = Field(
        None, description="Values for the statement's `?` placeholders, in order (plain JSON)."
    )
    room_id: str | None = Field(
        None, max_length=255, description="Also post a short rendering of the rows here."
    )
    limit: int = Field(100, ge=1, le=MAX_ROWS, description="Most rows returned.")


def to_dynamo(value: Any) -> dict[str, Any]:
    """A plain JSON value as a DynamoDB typed value ({"S": ...}, {"N": ...}, ...)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": json.dumps(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [to_dynamo(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {str(key): to_dynamo(item) for key, item in value.items()}}
    raise ActionFailed(f"parameter of type {type(value).__name__} has no DynamoDB type")


def from_dynamo(typed: dict[str, Any]) -> Any:
    """A DynamoDB typed value as plain JSON; sets become sorted lists, binary base64."""
    ((kind, value),) = typed.items()
    if kind == "S":
        return value
    if kind == "N":
        return _number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_dynamo(item) for item in value]
    if kind == "M":
        return {key: from_dynamo(item) for key, item in value.items()}
    if kind == "SS":
        return sorted(value)
    if kind == "NS":
        return sorted(_number(item) for item in value)
    if kind == "B":
        return base64.b64encode(value).decode()
    if kind == "BS":
        return sorted(base64.b64encode(item).decode() for item in value)
    raise ActionFailed(f"unknown DynamoDB type {kind!r}")


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def render(table: str, rows: list[dict[str, Any]], more: bool) -> str:
    """A few lines for a chat room: a count, then one compact JSON line per row."""
    count = f"{len(rows)}{'+' if more else ''} row{'s' if len(rows) != 1 else ''}"
    lines = [f"{count} from {table}"]
    lines += [
        json.dumps(row, sort_keys=True, separators=(",", ":"))[:500] for row in rows[:ROWS_POSTED]
    ]
    if len(rows) > ROWS_POSTED:
        lines.append(f"... and {len(rows) - ROWS_POSTED} more")
    return "\n".join(lines)


def run_query(ctx: ActionContext, args: RunQueryArgs) -> Any:
    select = check_select(args.statement, ctx.settings.query_tables)
    dynamodb = aws.client(ctx.settings, "dynamodb")
    request: dict[str, Any] = {"Statement": args.statement}
    if args.parameters:
        request["Parameters"] = [to_dynamo(value) for value in args.parameters]
    rows: list[dict[str, Any]] = []
    more = False
    while True:
        with aws.failing_as(f"query on {select.table}"):
            page = dynamodb.execute_statement(**request)
        rows += [{k: from_dynamo(v) for k, v in item.items()} for item in page.get("Items", [])]
        token = page.get("NextToken")
        if len(rows) >= args.limit or not token or ctx.cancelled:
            more = len(rows) > args.limit or bool(token)
            break
        request["NextToken"] = token
    rows = rows[: args.limit]
    ctx.log.info(f"{len(rows)} row(s) from {select.table}{' (more left)' if more else ''}")
    result: dict[str, Any] = {"table": select.table, "count": len(rows), "rows": rows}
    if more:
        result["more"] = True
    if args.room_id:
        result["posted"] = post_to_room(ctx, args.room_id, render(select.table, rows, more))
    return result


ACTION = Action(
    "run_query",
    RunQueryArgs,
    run_query,
    "Runs one read-only PartiQL SELECT on an allowed DynamoDB table; can post the rows.",
)
