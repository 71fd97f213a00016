"""Built-in actions (DESIGN §6): the diagnostic `echo`, `sleep`, `fail` here,
and the ones that reach out, each in its own module (docs/actions.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.actions import ai, http_request, lambda_invoke, query, rooms
from chalicelib.actions.base import Action, ActionContext, ActionFailed
from chalicelib.tasks.model import MAX_RUN_TIMEOUT_S


class EchoArgs(BaseModel):
    """Any JSON object; it is returned as the result."""

    model_config = ConfigDict(extra="allow")


def echo(ctx: ActionContext, args: EchoArgs) -> Any:
    ctx.log.info(f"echo {len(args.model_dump())} argument(s)")
    return args.model_dump()


class SleepArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No longer than a run may take (a longer sleep could only end `timeout`).
    seconds: float = Field(ge=0, le=MAX_RUN_TIMEOUT_S, description="How long to sleep.")


def sleep(ctx: ActionContext, args: SleepArgs) -> Any:
    ctx.log.info(f"sleeping {args.seconds}s")
    if ctx.wait(args.seconds):
        ctx.log.info("woken: cancelled")
        return {"slept": False}
    return {"slept": args.seconds}


class FailArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field("failed on purpose", max_length=2000)


def fail(ctx: ActionContext, args: FailArgs) -> Any:
    ctx.log.error(args.message)
    raise ActionFailed(args.message)


BUILTIN = (
    Action("echo", EchoArgs, echo, "Returns its args."),
    Action("sleep", SleepArgs, sleep, "Sleeps `seconds`, waking early if cancelled."),
    Action("fail", FailArgs, fail, "Fails with `message`."),
    http_request.ACTION,
    rooms.ACTION,
    ai.ACTION,
    query.ACTION,
    lambda_invoke.ACTION,
)
