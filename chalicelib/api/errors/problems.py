"""The `/v1` error surface: RFC 9457 `application/problem+json`."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.routing import public_base_url, request_path
from chalicelib.auth.service import request_token
from chalicelib.errors import TickworkError

ERROR_SCHEMA_PATH = "/schemas/ErrorModel.json"


class ErrorDetail(BaseModel):
    model_config = ConfigDict(title="ErrorDetail")

    location: str = Field(description="Where the error is, e.g. `body.schedule` or `query.limit`.")
    message: str
    value: Any = Field(None, description="The offending value, when there is one.")


class ErrorModel(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(title="ErrorModel", populate_by_name=True)

    schema_: str = Field(alias="$schema", description="URL of this document's JSON Schema.")
    type: str = Field("about:blank", description="A URI identifying the problem type.")
    title: str = Field(description="Short summary of the problem type (the HTTP reason).")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time.")
    instance: str = Field(description="The request path this problem is about.")
    errors: list[ErrorDetail] = Field(default_factory=list)


def problem(error: TickworkError, request: Request) -> dict[str, Any]:
    document = ErrorModel(
        schema_=public_base_url(request) + ERROR_SCHEMA_PATH,
        title=error.title,
        status=error.status,
        detail=error.detail,
        instance=request_path(request),
        errors=[
            ErrorDetail(location=e.location, message=e.message, value=e.value) for e in error.errors
        ],
    )
    return document.model_dump(mode="json", by_alias=True)


class ProblemSurface:
    """Canonical `/v1` and `/api/tasks`: Bearer or X-Auth-Token, problem+json errors."""

    name = "v1"
    error_model: type[BaseModel] = ErrorModel
    error_media_type = "application/problem+json"

    def token(self, request: Request) -> str | None:
        return request_token(request.headers or {})

    def render_error(self, error: TickworkError, request: Request) -> Response:
        headers: dict[str, str | list[str]] = {"Content-Type": self.error_media_type}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="tickwork"'
        return Response(
            body=json.dumps(problem(error, request), default=str, separators=(",", ":")),
            status_code=error.status,
            headers=headers,
        )


PROBLEMS = ProblemSurface()
