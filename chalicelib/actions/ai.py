"""`trigger_ai`: ask an LLM and post its answer to a room (DESIGN §6).

Two back ends, chosen by `TICKWORK_AI_PROVIDER`: Amazon Bedrock's Converse
API through botocore (`bedrock`, the default: no key to keep, IAM decides),
or any OpenAI-compatible `POST {base_url}/chat/completions` (`openai`:
OpenAI, vLLM, Ollama, LiteLLM, ...). The answer is posted exactly as
`send_message` posts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.actions import aws
from chalicelib.actions.base import Action, ActionContext, ActionFailed
from chalicelib.actions.netguard import AddressPolicy
from chalicelib.actions.rooms import post_to_room
from chalicelib.actions.transport import send, shown, time_left_s

#: Largest answer read from an OpenAI-compatible endpoint.
MAX_COMPLETION_BYTES = 256 * 1024
#: Bedrock's read timeout: generation can be slow; the run's own timeout still bounds it.
BEDROCK_READ_TIMEOUT_S = 900


class TriggerAiArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: str = Field(min_length=1, max_length=255, description="Where the answer is posted.")
    prompt: str = Field(min_length=1, max_length=32_000)
    model: str | None = Field(
        None, max_length=256, description="Model id; default TICKWORK_AI_MODEL."
    )


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    #: Token counts as the provider reports them, if it does.
    usage: dict[str, Any] | None


def ask_bedrock(ctx: ActionContext, prompt: str, model: str, max_tokens: int) -> Answer:
    bedrock = aws.client(ctx.settings, "bedrock-runtime", read_timeout_s=BEDROCK_READ_TIMEOUT_S)
    with aws.failing_as(f"Bedrock converse with {model}"):
        response = bedrock.converse(
            modelId=model,
            messages=[{"role": "user", "content": [{"text": prompt}]}],
            inferenceConfig={"maxTokens": max_tokens},
        )
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in blocks)
    return Answer(text, model, response.get("usage"))


def ask_openai(ctx: ActionContext, prompt: str, model: str, max_tokens: int) -> Answer:
    base_url = ctx.settings.openai_base_url
    if not base_url:
        raise ActionFailed("TICKWORK_AI_PROVIDER is openai but TICKWORK_OPENAI_BASE_URL is not set")
    url = f"{base_url.rstrip('/')}/chat/completions"
    headers = {"Content-Type": "application/json"}
    if ctx.settings.openai_api_key:
        headers["Authorization"] = f"Bearer {ctx.settings.openai_api_key}"
    request = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }
    response = send(
        "POST",
        url,
        headers=headers,
        body=json.dumps(request).encode(),
        timeout_s=time_left_s(ctx.deadline, ctx.clock.now()),
        max_body_bytes=MAX_COMPLETION_BYTES,
        policy=AddressPolicy.for_operator(ctx.settings),
    )
    if response.status != 200:
        raise ActionFailed(
            f"{shown(url)} answered {response.status}: "
            f"{response.body[:300].decode(errors='replace')}"
        )
    data = response.json()
    try:
        text = data["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise ActionFailed(f"{shown(url)} answered without choices[0].message.content") from exc
    return Answer(str(text), str(data.get("model") or model), data.get("usage"))


def trigger_ai(ctx: ActionContext, args: TriggerAiArgs) -> Any:
    model = args.model or ctx.settings.ai_model
    if not model:
        raise ActionFailed("no model: pass `model` or set TICKWORK_AI_MODEL")
    ask = ask_openai if ctx.settings.ai_provider == "openai" else ask_bedrock
    ctx.log.info(f"asking {ctx.settings.ai_provider} model {model}")
    answer = ask(ctx, args.prompt, model, ctx.settings.ai_max_tokens)
    if not answer.text.strip():
        raise ActionFailed(f"{model} gave an empty answer; nothing was posted")
    result: dict[str, Any] = {"room_id": args.room_id, "model": answer.model}
    if ctx.cancelled:
        # The executor records the run as cancelled; the answer is kept, not posted.
        ctx.log.info("cancelled: the answer is not posted")
        return {**result, "answer": answer.text, "posted": False}
    result.update(post_to_room(ctx, args.room_id, answer.text))
    result["answer"] = answer.text
    if answer.usage is not None:
        result["usage"] = answer.usage
    return result


ACTION = Action(
    "trigger_ai",
    TriggerAiArgs,
    trigger_ai,
    "Asks an LLM (Bedrock or an OpenAI-compatible endpoint) and posts the answer to a room.",
)
