"""`GET /v1/me`: who the token is, so a client (the console) can tell a
member from an admin without trying an admin route."""

from __future__ import annotations

from chalice.app import Blueprint
from pydantic import BaseModel, Field

from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.auth.service import Role

bp = Blueprint(__name__)
TAGS = ("Admin",)


class MeView(BaseModel):
    token_id: str
    name: str = Field(description="The token's name, as issued.")
    project_id: str
    role: Role


@endpoint(
    bp,
    "GET",
    "/v1/me",
    summary="The calling token",
    surface=PROBLEMS,
    tags=TAGS,
    response=MeView,
    errors=(401,),
)
def me(call: Call) -> MeView:
    """Any valid token: its id, name, project and role. Never the secret."""
    who = call.who
    return MeView(token_id=who.token_id, name=who.name, project_id=who.project_id, role=who.role)
