"""The Matrix error surface (`/_synapse/...`): `{"errcode", "error"}` bodies.

Tokens come as on `/v1` (`Authorization: Bearer`, `X-Auth-Token`) or, as
Matrix clients send them, in the `access_token` query parameter; never both a
header and the parameter (Synapse refuses an `Authorization` header mixed with
`access_token` as a missing token, whatever their values).
"""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.routing import json_response
from chalicelib.auth.service import request_token
from chalicelib.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TickworkError,
    Unauthenticated,
    ValidationFailed,
)

#: The errcode of each error class; any other error is `M_UNKNOWN` with its own status.
ERRCODES: dict[type[TickworkError], str] = {
    BadRequest: "M_INVALID_PARAM",
    ValidationFailed: "M_INVALID_PARAM",
    Forbidden: "M_FORBIDDEN",
    NotFound: "M_NOT_FOUND",
    PayloadTooLarge: "M_TOO_LARGE",
}


class MatrixError(BaseModel):
    """A Matrix error body."""

    model_config = ConfigDict(title="MatrixError")

    errcode: str = Field(description="e.g. `M_MISSING_TOKEN`, `M_FORBIDDEN`, `M_INVALID_PARAM`.")
    error: str = Field(description="What went wrong, for a human.")


class MatrixSurface:
    """Synapse-compatible routes: Bearer, X-Auth-Token or `?access_token=`; Matrix errors."""

    name = "matrix"
    error_model: type[BaseModel] = MatrixError
    error_media_type = "application/json"

    def token(self, request: Request) -> str | None:
        """The request's token; None when it has none, or two (see `_mixed`)."""
        if _mixed(request):
            return None
        header = request_token(request.headers or {})
        if header:
            return header
        query: Mapping[str, str] = request.query_params or {}
        return (query.get("access_token") or "").strip() or None

    def render_error(self, error: TickworkError, request: Request) -> Response:
        status, errcode, message = error.status, "M_UNKNOWN", error.detail
        if isinstance(error, Unauthenticated):
            if _mixed(request):
                errcode = "M_MISSING_TOKEN"
                message = "Mixing a token header and the access_token query parameter: send one"
            elif self.token(request) is None:
                errcode = "M_MISSING_TOKEN"
                message = (
                    "Missing access token: send 'Authorization: Bearer <token>' "
                    "or the access_token query parameter"
                )
            else:
                errcode, message = "M_UNKNOWN_TOKEN", "Unknown or revoked access token"
        elif isinstance(error, ValidationFailed):
            # Matrix has no 422: a bad query parameter is a 400 M_INVALID_PARAM.
            status, errcode = 400, "M_INVALID_PARAM"
            message = "; ".join(_parameter_message(e.location, e.message) for e in error.errors)
            message = message or error.detail
        else:
            errcode = next(
                (code for kind, code in ERRCODES.items() if isinstance(error, kind)), errcode
            )
        headers = {"WWW-Authenticate": 'Bearer realm="tickwork"'} if status == 401 else None
        return json_response(MatrixError(errcode=errcode, error=message), status, headers)


def _mixed(request: Request) -> bool:
    """Whether the request carries a token header (`Authorization`, whatever its
    scheme, or `X-Auth-Token`) and the `access_token` parameter (even empty)."""
    headers = {name.lower() for name in (request.headers or {})}
    query: Mapping[str, str] = request.query_params or {}
    return "access_token" in query and bool(headers & {"authorization", "x-auth-token"})


def _parameter_message(location: str, message: str) -> str:
    prefix, _, name = location.partition(".")
    if prefix == "query" and name:
        # `status.1` is the second `status` given: name the parameter.
        name = ".".join(part for part in name.split(".") if not part.isdigit())
        return f"Query parameter '{name}': {message}"
    return f"{location}: {message}"


MATRIX = MatrixSurface()
