"""Unauthenticated routes: health, the OpenAPI document and JSON Schemas."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint
from pydantic import BaseModel

from chalicelib.api import openapi
from chalicelib.api.errors.problems import ERROR_SCHEMA_PATH, PROBLEMS, ErrorModel
from chalicelib.api.routing import Call, endpoint, json_response

bp = Blueprint(__name__)
TAGS = ("Meta",)


class Health(BaseModel):
    status: str
    version: str


@endpoint(
    bp,
    "GET",
    "/health",
    summary="Liveness",
    surface=PROBLEMS,
    tags=TAGS,
    auth="none",
    response=Health,
)
def health(call: Call) -> Health:
    """Answers while the API can serve; it does not touch the database."""
    return Health(status="ok", version=openapi.VERSION)


@endpoint(
    bp,
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    surface=PROBLEMS,
    tags=TAGS,
    auth="none",
)
def openapi_json(call: Call) -> Any:
    return json_response(openapi.document(actions=call.services.queue.action_names()))


@endpoint(
    bp,
    "GET",
    ERROR_SCHEMA_PATH,
    summary="JSON Schema of problem+json errors",
    surface=PROBLEMS,
    tags=TAGS,
    auth="none",
)
def error_schema(call: Call) -> Any:
    """The schema that every `$schema` of a `/v1` error points at."""
    schema = ErrorModel.model_json_schema(by_alias=True, mode="serialization")
    return json_response(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema},
        headers={"Content-Type": "application/schema+json"},
    )
