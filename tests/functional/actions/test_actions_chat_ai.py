"""`send_message` and `trigger_ai` against real HTTP servers: a Matrix homeserver,
room webhooks, an OpenAI-compatible endpoint, and Bedrock's Converse API
(moto 5.2.5 does not implement `converse`, so real botocore talks to a small
server speaking its wire format)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import pytest

from chalicelib.actions import ActionFailed
from chalicelib.actions.ai import TriggerAiArgs, trigger_ai
from chalicelib.actions.rooms import SendMessageArgs, send_message
from chalicelib.jobs.model import JobStatus
from chalicelib.settings import Settings
from chalicelib.tasks.model import Task
from chalicelib.wiring import Services
from tests.conftest import FakeClock
from tests.functional.action_helpers import (
    FakeServer,
    Received,
    Reply,
    action_context,
    fake_servers,
    json_reply,
)
from tests.functional.engine_helpers import Pipeline, runs

TOKEN = "syt_matrix_token"
API = "/_matrix/client/v3"


class Homeserver:
    """Enough of Matrix's client-server API: send (idempotent per txn id) and aliases."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}  # txn id -> event

    def reply(self, request: Received) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return json_reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid token"})
        parts = [unquote(p) for p in request.path.removeprefix(API).split("/")]
        if request.method == "GET" and parts[1:3] == ["directory", "room"]:
            if parts[3] == "#ops:example.org":
                return json_reply(200, {"room_id": "!ops:example.org", "servers": []})
            return json_reply(404, {"errcode": "M_NOT_FOUND", "error": "Room alias not found"})
        if (
            request.method == "PUT"
            and parts[1] == "rooms"
            and parts[3:5] == ["send", "m.room.message"]
        ):
            if parts[2] == "!closed:example.org":
                return json_reply(403, {"errcode": "M_FORBIDDEN", "error": "not in room"})
            txn = parts[5]
            self.events.setdefault(txn, {"room": parts[2], "content": request.json()})
            return json_reply(200, {"event_id": f"$event{list(self.events).index(txn)}"})
        return json_reply(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Received], Reply]], FakeServer]]:
    with fake_servers() as factory:
        yield factory


@pytest.fixture
def homeserver_state() -> Homeserver:
    return Homeserver()


@pytest.fixture
def homeserver(
    serve: Callable[[Callable[[Received], Reply]], FakeServer], homeserver_state: Homeserver
) -> FakeServer:
    return serve(homeserver_state.reply)


def completion(text: str) -> Reply:
    return json_reply(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "tiny-llm-0613",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        },
    )


@pytest.fixture
def llm(serve: Callable[[Callable[[Received], Reply]], FakeServer]) -> FakeServer:
    """An OpenAI-compatible endpoint that answers every prompt the same way."""
    return serve(lambda r: completion("All systems nominal."))


@pytest.fixture
def chat(homeserver: FakeServer, llm: FakeServer) -> Settings:
    """Settings of a Matrix homeserver, one webhook room, and the OpenAI-compatible LLM."""
    return Settings(
        matrix_homeserver=homeserver.url + "/",
        matrix_access_token=TOKEN,
        ai_provider="openai",
        ai_model="tiny-llm",
        openai_base_url=f"{llm.url}/v1",
        openai_api_key="sk-test",
    )


@pytest.fixture
def settings(settings: Settings, chat: Settings) -> Settings:
    """The pipeline tests' stage with the chat settings."""
    return replace(
        chat, stage=settings.stage, aws_endpoint_url=settings.aws_endpoint_url, lookahead_s=0.5
    )


def send(
    settings: Settings, clock: FakeClock, attempt: int = 1, job_id: str = "tsk_1:1", **args: Any
) -> Any:
    ctx = action_context(settings, clock, attempt=attempt, job_id=job_id)
    return send_message(ctx, SendMessageArgs.model_validate(args))


def ask(settings: Settings, clock: FakeClock, **args: Any) -> Any:
    return trigger_ai(action_context(settings, clock), TriggerAiArgs.model_validate(args))


# ----------------------------------------------------------------- send_message
def test_text_goes_to_the_matrix_room_with_the_token(
    chat: Settings, clock: FakeClock, homeserver: FakeServer
) -> None:
    result = send(chat, clock, room_id="!abc:example.org", content="Backup done")
    assert result == {"room_id": "!abc:example.org", "event_id": "$event0"}
    [request] = homeserver.received
    assert request.method == "PUT"
    assert request.path.startswith(f"{API}/rooms/%21abc%3Aexample.org/send/m.room.message/")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {"msgtype": "m.text", "body": "Backup done"}


def test_a_content_object_is_sent_as_the_event_content(
    chat: Settings, clock: FakeClock, homeserver: FakeServer
) -> None:
    content = {
        "msgtype": "m.notice",
        "body": "*ok*",
        "format": "org.matrix.custom.html",
        "formatted_body": "<b>ok</b>",
    }
    send(chat, clock, room_id="!abc:example.org", content=content)
    assert homeserver.received[0].json() == content


def test_a_retried_attempt_reuses_the_transaction_so_matrix_posts_once(
    chat: Settings, clock: FakeClock, homeserver: FakeServer, homeserver_state: Homeserver
) -> None:
    first = send(chat, clock, attempt=1, room_id="!abc:example.org", content="hi")
    again = send(chat, clock, attempt=2, room_id="!abc:example.org", content="hi")
    other_job = send(chat, clock, job_id="tsk_1:2", room_id="!abc:example.org", content="hi")
    assert first["event_id"] == again["event_id"] != other_job["event_id"]
    paths = [r.path for r in homeserver.received]
    assert paths[0] == paths[1] != paths[2]
    assert len(homeserver_state.events) == 2


def test_an_alias_is_resolved_to_its_room(
    chat: Settings, clock: FakeClock, homeserver: FakeServer
) -> None:
    result = send(chat, clock, room_id="#ops:example.org", content="hi")
    assert result["room_id"] == "!ops:example.org"
    assert homeserver.received[0].path == f"{API}/directory/room/%23ops%3Aexample.org"
    assert "/rooms/%21ops%3Aexample.org/send/" in homeserver.received[1].path
    with pytest.raises(
        ActionFailed, match=r"Matrix refused resolving #nope:example\.org: 404 M_NOT_FOUND"
    ):
        send(chat, clock, room_id="#nope:example.org", content="hi")


def test_matrix_errors_fail_the_run_with_their_errcode(chat: Settings, clock: FakeClock) -> None:
    with pytest.raises(ActionFailed, match="403 M_FORBIDDEN: not in room"):
        send(chat, clock, room_id="!closed:example.org", content="hi")
    with pytest.raises(ActionFailed, match="401 M_UNKNOWN_TOKEN"):
        send(replace(chat, matrix_access_token="wrong"), clock, room_id="!a:b", content="hi")


def test_a_room_with_a_webhook_is_posted_there_not_to_matrix(
    chat: Settings,
    clock: FakeClock,
    serve: Callable[[Callable[[Received], Reply]], FakeServer],
    homeserver: FakeServer,
) -> None:
    hook = serve(lambda r: (200, {"Content-Type": "text/plain"}, b"ok"))
    settings = replace(chat, room_webhooks=(("!abc:example.org", f"{hook.url}/hooks/T1"),))
    result = send(settings, clock, room_id="!abc:example.org", content="Deploy finished")
    assert result == {"room_id": "!abc:example.org", "status": 200}
    [request] = hook.received
    assert (request.method, request.path) == ("POST", "/hooks/T1")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "room_id": "!abc:example.org",
        "text": "Deploy finished",
        "content": {"msgtype": "m.text", "body": "Deploy finished"},
    }
    assert homeserver.received == []


def test_a_webhook_that_refuses_fails_the_run(
    clock: FakeClock, serve: Callable[[Callable[[Received], Reply]], FakeServer]
) -> None:
    hook = serve(lambda r: (500, {}, b"boom"))
    settings = Settings(room_webhooks=(("ops", hook.url),))
    with pytest.raises(ActionFailed, match="the webhook of room 'ops' answered 500: boom"):
        send(settings, clock, room_id="ops", content="x")


def test_a_room_with_neither_webhook_nor_matrix_fails_clearly(
    chat: Settings, clock: FakeClock
) -> None:
    with pytest.raises(ActionFailed, match=r"no webhook .* and Matrix is not configured"):
        send(Settings(), clock, room_id="!abc:example.org", content="x")
    with pytest.raises(ActionFailed, match="is not a Matrix room id"):
        send(chat, clock, room_id="ops", content="x")


def test_a_content_object_needs_a_body() -> None:
    with pytest.raises(ValueError, match='needs a string "body"'):
        SendMessageArgs.model_validate({"room_id": "!a:b", "content": {"msgtype": "m.text"}})


# ------------------------------------------------------------------- trigger_ai
def test_an_openai_compatible_answer_is_posted_to_the_room(
    chat: Settings, clock: FakeClock, llm: FakeServer, homeserver: FakeServer
) -> None:
    result = ask(chat, clock, room_id="!abc:example.org", prompt="Status?")
    assert result == {
        "room_id": "!abc:example.org",
        "event_id": "$event0",
        "model": "tiny-llm-0613",
        "answer": "All systems nominal.",
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    [request] = llm.received
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json() == {
        "model": "tiny-llm",
        "messages": [{"role": "user", "content": "Status?"}],
        "max_tokens": 1024,
    }
    assert homeserver.received[0].json() == {"msgtype": "m.text", "body": "All systems nominal."}


def test_the_jobs_model_wins_over_the_default(
    chat: Settings, clock: FakeClock, llm: FakeServer
) -> None:
    ask(chat, clock, room_id="!abc:example.org", prompt="Hi", model="bigger-llm")
    assert llm.received[0].json()["model"] == "bigger-llm"


def test_llm_failures_fail_the_run_and_post_nothing(
    chat: Settings,
    clock: FakeClock,
    serve: Callable[[Callable[[Received], Reply]], FakeServer],
    homeserver: FakeServer,
) -> None:
    refusing = serve(lambda r: json_reply(401, {"error": {"message": "bad key"}}))
    with pytest.raises(ActionFailed, match=r"/v1/chat/completions answered 401: .*bad key"):
        ask(replace(chat, openai_base_url=f"{refusing.url}/v1"), clock, room_id="!a:b", prompt="x")
    silent = serve(lambda r: completion(""))
    with pytest.raises(ActionFailed, match="empty answer; nothing was posted"):
        ask(replace(chat, openai_base_url=silent.url), clock, room_id="!a:b", prompt="x")
    with pytest.raises(ActionFailed, match="no model"):
        ask(replace(chat, ai_model=None), clock, room_id="!a:b", prompt="x")
    assert homeserver.received == []


def converse_server(received_text: str) -> Callable[[Received], Reply]:
    """Bedrock Runtime's Converse over HTTP: POST /model/{modelId}/converse."""

    def reply(request: Received) -> Reply:
        if request.json()["messages"][0]["content"][0]["text"] == "fail":
            return (
                400,
                {
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/",
                },
                json.dumps({"message": "The provided model identifier is invalid."}).encode(),
            )
        return json_reply(
            200,
            {
                "output": {"message": {"role": "assistant", "content": [{"text": received_text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 7, "outputTokens": 4, "totalTokens": 11},
                "metrics": {"latencyMs": 12},
            },
        )

    return reply


def test_bedrock_converse_is_called_through_botocore_and_posted(
    chat: Settings,
    clock: FakeClock,
    serve: Callable[[Callable[[Received], Reply]], FakeServer],
    homeserver: FakeServer,
) -> None:
    bedrock = serve(converse_server("Queue depth is normal."))
    settings = replace(
        chat,
        ai_provider="bedrock",
        ai_model="anthropic.claude-3-haiku-20240307-v1:0",
        aws_endpoint_url=bedrock.url,
    )
    result = ask(settings, clock, room_id="!abc:example.org", prompt="How is the queue?")
    assert result["answer"] == "Queue depth is normal."
    assert result["model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert result["usage"] == {"inputTokens": 7, "outputTokens": 4, "totalTokens": 11}
    [request] = bedrock.received
    assert request.method == "POST"
    assert unquote(request.path) == "/model/anthropic.claude-3-haiku-20240307-v1:0/converse"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert "/bedrock/aws4_request" in request.headers["authorization"]
    assert request.json() == {
        "messages": [{"role": "user", "content": [{"text": "How is the queue?"}]}],
        "inferenceConfig": {"maxTokens": 1024},
    }
    assert homeserver.received[0].json()["body"] == "Queue depth is normal."


def test_a_bedrock_error_fails_the_run_with_its_code(
    chat: Settings,
    clock: FakeClock,
    serve: Callable[[Callable[[Received], Reply]], FakeServer],
) -> None:
    bedrock = serve(converse_server("unused"))
    settings = replace(chat, ai_provider="bedrock", aws_endpoint_url=bedrock.url)
    with pytest.raises(
        ActionFailed, match="Bedrock converse with tiny-llm: ValidationException: The provided"
    ):
        ask(settings, clock, room_id="!abc:example.org", prompt="fail")


# ------------------------------------------------------------- through the engine
def test_through_the_pipeline_messages_and_answers_are_posted_and_recorded(
    services: Services,
    pipeline: Pipeline,
    clock: FakeClock,
    make_task: Callable[..., Task],
    homeserver: FakeServer,
) -> None:
    message = make_task(
        action="send_message", args={"room_id": "!abc:example.org", "content": "tick"}
    )
    answer = make_task(
        action="trigger_ai", args={"room_id": "#ops:example.org", "prompt": "Status?"}
    )
    nowhere = make_task(action="send_message", args={"room_id": "general", "content": "x"})
    clock.advance(10)
    pipeline.tick()
    pipeline.deliver()

    [sent] = runs(services, message)
    assert sent.status is JobStatus.COMPLETE
    assert sent.result["room_id"] == "!abc:example.org" and sent.result["event_id"].startswith("$")
    [answered] = runs(services, answer)
    assert answered.status is JobStatus.COMPLETE
    assert answered.result["answer"] == "All systems nominal."
    assert answered.result["room_id"] == "!ops:example.org"
    [failed] = runs(services, nowhere)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "'general' has no webhook" in failed.error
    bodies = sorted(r.json()["body"] for r in homeserver.received if r.method == "PUT")
    assert bodies == ["All systems nominal.", "tick"]
