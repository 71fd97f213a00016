"""`send_message`: post to a chat room (DESIGN §6), and `post_to_room`, which
`trigger_ai` and `run_query` use to post their answers the same way.

A room is reached through a webhook the operator configured for it
(`TICKWORK_ROOM_WEBHOOKS`), or else through the Matrix client-server API of
the configured homeserver. Matrix messages carry a transaction id made from
the job, so an automatic retry of a job whose earlier attempt's message did
reach the homeserver is absorbed by Matrix instead of posted twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.actions.base import Action, ActionContext, ActionFailed
from chalicelib.actions.netguard import AddressPolicy
from chalicelib.actions.transport import Response, send, shown, time_left_s
from chalicelib.jobs.model import Job

#: Largest answer body read from a webhook or homeserver.
MAX_ANSWER_BYTES = 64 * 1024


class SendMessageArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: str = Field(
        min_length=1,
        max_length=255,
        description="A room with a configured webhook, or a Matrix room id "
        "(!id:server) or alias (#alias:server).",
    )
    content: str | dict[str, Any] = Field(
        description="Text, or a Matrix m.room.message content object "
        '({"msgtype": "m.notice", "body": ...}).'
    )

    @field_validator("content")
    @classmethod
    def _has_body(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, dict) and not isinstance(value.get("body"), str):
            raise ValueError('a content object needs a string "body"')
        return value


def message_content(content: str | dict[str, Any]) -> dict[str, Any]:
    """The m.room.message content of a text or of a content object."""
    if isinstance(content, str):
        return {"msgtype": "m.text", "body": content}
    return {"msgtype": "m.text", **content}


def transaction_id(job: Job) -> str:
    """Matrix's idempotency key for the job's message: the same for every
    attempt of one job (a retry re-sends what may have arrived), different for
    every job (a manual retry or a new firing is a new job)."""
    digest = hashlib.sha256(f"{job.project_id}/{job.id}".encode()).hexdigest()
    return f"tickwork-{digest[:32]}"


def post_to_room(ctx: ActionContext, room_id: str, content: str | dict[str, Any]) -> dict[str, Any]:
    """Post a message; returns {room_id, event_id} (Matrix) or {room_id, status} (webhook)."""
    event = message_content(content)
    webhook = ctx.settings.room_webhook(room_id)
    if webhook is not None:
        return _post_webhook(ctx, room_id, webhook, event)
    settings = ctx.settings
    if not (settings.matrix_homeserver and settings.matrix_access_token):
        raise ActionFailed(
            f"room {room_id!r} has no webhook (TICKWORK_ROOM_WEBHOOKS) and Matrix is not "
            "configured (TICKWORK_MATRIX_HOMESERVER, TICKWORK_MATRIX_ACCESS_TOKEN)"
        )
    if not room_id.startswith(("!", "#")) or ":" not in room_id:
        raise ActionFailed(
            f"room {room_id!r} has no webhook and is not a Matrix room id "
            "(!id:server) or alias (#alias:server)"
        )
    return _post_matrix(ctx, room_id, event)


def _post_webhook(
    ctx: ActionContext, room_id: str, url: str, event: dict[str, Any]
) -> dict[str, Any]:
    # `text` is what Slack, Mattermost and Matrix hookshot webhooks read.
    payload = {"room_id": room_id, "text": event["body"], "content": event}
    response = _exchange(ctx, "POST", url, payload, {})
    if not 200 <= response.status < 300:
        raise ActionFailed(
            f"the webhook of room {room_id!r} answered {response.status}: {_snippet(response)}"
        )
    ctx.log.info(f"posted to room {room_id} by webhook {shown(url)} -> {response.status}")
    return {"room_id": room_id, "status": response.status}


def _post_matrix(ctx: ActionContext, room_id: str, event: dict[str, Any]) -> dict[str, Any]:
    settings = ctx.settings
    base = f"{(settings.matrix_homeserver or '').rstrip('/')}/_matrix/client/v3"
    auth = {"Authorization": f"Bearer {settings.matrix_access_token}"}
    target = room_id
    if room_id.startswith("#"):
        response = _exchange(
            ctx, "GET", f"{base}/directory/room/{quote(room_id, safe='')}", None, auth
        )
        target = str(_matrix_answer(response, f"resolving {room_id}").get("room_id", ""))
        if not target:
            raise ActionFailed(f"Matrix resolved {room_id} to no room")
    url = f"{base}/rooms/{quote(target, safe='')}/send/m.room.message/{transaction_id(ctx.job)}"
    answer = _matrix_answer(_exchange(ctx, "PUT", url, event, auth), f"posting to {room_id}")
    event_id = answer.get("event_id")
    if not isinstance(event_id, str):
        raise ActionFailed(f"Matrix answered without an event_id posting to {room_id}")
    ctx.log.info(f"posted to Matrix room {target}: {event_id}")
    return {"room_id": target, "event_id": event_id}


def _exchange(
    ctx: ActionContext, method: str, url: str, payload: Any, headers: dict[str, str]
) -> Response:
    # The homeserver and webhooks are the operator's, not a job's: no SSRF guard,
    # but never the embedded AWS.
    body = None if payload is None else json.dumps(payload).encode()
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    return send(
        method,
        url,
        headers=headers,
        body=body,
        timeout_s=time_left_s(ctx.deadline, ctx.clock.now()),
        max_body_bytes=MAX_ANSWER_BYTES,
        policy=AddressPolicy.for_operator(ctx.settings),
    )


def _matrix_answer(response: Response, doing: str) -> dict[str, Any]:
    """The JSON object of a 200 answer; ActionFailed with Matrix's errcode otherwise."""
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    if response.status == 200 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and "errcode" in data:
        reason = f"{data['errcode']}: {data.get('error', '')}"
    else:
        reason = _snippet(response)
    raise ActionFailed(f"Matrix refused {doing}: {response.status} {reason}")


def _snippet(response: Response) -> str:
    return response.body[:300].decode(errors="replace") or "(empty body)"


def send_message(ctx: ActionContext, args: SendMessageArgs) -> Any:
    return post_to_room(ctx, args.room_id, args.content)


ACTION = Action(
    "send_message",
    SendMessageArgs,
    send_message,
    "Posts `content` to a chat room: its configured webhook, or Matrix.",
)
