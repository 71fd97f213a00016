"""`/v1/admin/tokens`: issue, list and revoke API tokens (admin only)."""

from __future__ import annotations

from datetime import datetime

from chalice.app import Blueprint
from pydantic import BaseModel, Field

from chalicelib.api.common import ListQuery
from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.auth.service import Role
from chalicelib.storage.tokens import StoredToken

bp = Blueprint(__name__)
TAGS = ("Admin",)

PROJECT_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class TokenCreate(BaseModel):
    project_id: str = Field(pattern=PROJECT_ID, description="The project the token acts in.")
    role: Role = Field(Role.MEMBER, description="`admin` may also use the admin endpoints.")
    name: str = Field(min_length=1, max_length=100, description="Who or what uses the token.")


class TokenView(BaseModel):
    id: str
    project_id: str
    role: Role
    name: str
    created_at: datetime


class TokenCreated(TokenView):
    token: str = Field(description="The secret. It is shown only in this response.")


class TokenList(BaseModel):
    tokens: list[TokenView]
    next_cursor: str | None


def _view(token: StoredToken) -> TokenView:
    return TokenView(
        id=token.id,
        project_id=token.project_id,
        role=Role(token.role),
        name=token.name,
        created_at=token.created_at,
    )


@endpoint(
    bp,
    "POST",
    "/v1/admin/tokens",
    summary="Issue a token",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    status=201,
    body=TokenCreate,
    response=TokenCreated,
    errors=(400, 401, 403, 422),
)
def create_token(call: Call) -> TokenCreated:
    """Creates a token for any project. The secret is returned once and stored only as a hash."""
    body: TokenCreate = call.body
    issued = call.services.tokens.issue(body.project_id, body.role, body.name)
    return TokenCreated(**_view(issued.token).model_dump(), token=issued.secret)


@endpoint(
    bp,
    "GET",
    "/v1/admin/tokens",
    summary="List tokens",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    query=ListQuery,
    response=TokenList,
    errors=(401, 403, 422),
)
def list_tokens(call: Call) -> TokenList:
    """Every project's tokens, newest first. Secrets are never listed."""
    q: ListQuery = call.query
    page = call.services.tokens.list(limit=q.limit, cursor=q.cursor)
    return TokenList(tokens=[_view(t) for t in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "DELETE",
    "/v1/admin/tokens/{token_id}",
    summary="Revoke a token",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    status=204,
    errors=(401, 403, 404),
)
def revoke_token(call: Call) -> None:
    """The token stops working at once."""
    call.services.tokens.revoke(call.path["token_id"])
