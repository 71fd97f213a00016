"""Route plumbing shared by every blueprint.

`endpoint()` declares a route: it registers it on its module's blueprint and
records it in `ROUTES`, from which `/openapi.json` is generated (the pydantic
models that validate a request are the ones the document shows) and from
which the app serves it (`mount.py`: the app registers every route at once, and
a route's module is imported by its first request). Each route belongs to a
`Surface`, which knows how that API family finds the caller's token and
renders errors, so every domain error is mapped to HTTP in one place per
surface.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args, get_origin

from chalice.app import Blueprint, Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib.api.mount import add_route
from chalicelib.auth.service import Principal
from chalicelib.errors import (
    BadRequest,
    PayloadTooLarge,
    TickworkError,
    from_pydantic,
)
from chalicelib.wiring import Services, services

logger = logging.getLogger("tickwork.api")

Auth = Literal["none", "member", "admin"]


class Surface(Protocol):
    """An API family: how it finds tokens and how it renders errors."""

    name: str
    error_model: type[BaseModel]
    error_media_type: str

    def token(self, request: Request) -> str | None: ...

    def render_error(self, error: TickworkError, request: Request) -> Response: ...


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    surface: Surface
    auth: Auth
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    errors: tuple[int, ...]
    tags: tuple[str, ...]
    handler: Callable[[Call], Any] = field(repr=False)
    description: str = ""
    headers: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The route module that declares it."""
        return self.handler.__module__


#: Every route declared so far: those of the route modules imported.
ROUTES: list[Route] = []


def declared(method: str, path: str) -> Route:
    """The route declared for `method path` (its module imported)."""
    for route in ROUTES:
        if route.method == method and route.path == path:
            return route
    raise LookupError(f"no route declared for {method} {path}")


@dataclass
class Call:
    """What a handler receives: the caller and the validated request parts."""

    principal: Principal | None
    body: Any
    query: Any
    path: dict[str, str]
    headers: Mapping[str, str]
    request: Request
    services: Services = field(repr=False)

    @property
    def who(self) -> Principal:
        assert self.principal is not None, "route declared auth='none'"
        return self.principal


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = (
        payload.model_dump_json()
        if isinstance(payload, BaseModel)
        else json.dumps(payload, separators=(",", ":"))
    )
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def endpoint(
    bp: Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    surface: Surface,
    tags: tuple[str, ...],
    auth: Auth = "member",
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
    headers: tuple[str, ...] = (),
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register `fn(call) -> model | Response | None` as a route."""

    def register(fn: Callable[[Call], Any]) -> Callable[[Call], Any]:
        route = Route(
            method=method,
            path=path,
            summary=summary,
            surface=surface,
            auth=auth,
            status=status,
            body=body,
            query=query,
            response=response,
            errors=errors,
            tags=tags,
            handler=fn,
            description=description or (fn.__doc__ or "").strip(),
            headers=headers,
        )
        ROUTES.append(route)

        def view(**path_params: str) -> Response:
            return serve(route, bp.current_request, path_params)

        view.__name__ = fn.__name__
        add_route(bp, method, path, view)
        return fn

    return register


def serve(route: Route, request: Request, path_params: dict[str, str]) -> Response:
    """`route`'s answer to `request`: its handler's, or its surface's error."""
    try:
        return _serve(route, request, path_params)
    except TickworkError as error:
        return route.surface.render_error(error, request)
    except Exception:
        logger.exception("unhandled error in %s %s", route.method, route.path)
        return route.surface.render_error(TickworkError("internal error"), request)


def _serve(route: Route, request: Request, path_params: dict[str, str]) -> Response:
    current = services()
    principal = None
    if route.auth != "none":
        principal = current.tokens.authenticate(route.surface.token(request))
        if route.auth == "admin":
            principal.require_admin()
    call = Call(
        principal=principal,
        body=_parse_body(route, request, current),
        query=_parse_query(route, request),
        path=path_params,
        headers={k.lower(): v for k, v in (request.headers or {}).items()},
        request=request,
        services=current,
    )
    result = route.handler(call)
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(body="", status_code=204, headers={})
    return json_response(result, route.status)


def _parse_body(route: Route, request: Request, current: Services) -> Any:
    if route.body is None:
        return None
    raw = request.raw_body or b""
    if len(raw) > current.settings.max_body_bytes:
        raise PayloadTooLarge(
            f"request body is {len(raw)} bytes; the limit is {current.settings.max_body_bytes}"
        )
    if not raw.strip():
        if not body_optional(route.body):
            raise BadRequest("request body is empty; send a JSON object")
        document: Any = {}
    else:
        document = parse_json(raw)
    try:
        return route.body.model_validate(document)
    except ValidationError as exc:
        raise from_pydantic(exc, "body") from None


def body_optional(model: type[BaseModel]) -> bool:
    """Whether a request may omit its body: `model` has no required field, so an
    empty body means `{}` (`approve`, `reject`, `redrive`)."""
    return not any(info.is_required() for info in model.model_fields.values())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str) -> Any:
    """A request body as JSON, or BadRequest (400) for anything that is not JSON
    (`NaN`, `Infinity`) or nests too deeply to parse."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def _parse_query(route: Route, request: Request) -> Any:
    if route.query is None:
        return None
    query = request.query_params
    params: dict[str, Any] = dict(query or {})
    # A parameter a model declares as a list may be repeated (`?status=a&status=b`):
    # it gets every value. Other fields take the last one, as Chalice's MultiDict gives it.
    if query is not None:
        for name in _list_fields(route.query):
            if name in query:
                params[name] = query.getlist(name)
    try:
        return route.query.model_validate(params)
    except ValidationError as exc:
        raise from_pydantic(exc, "query") from None


def _list_fields(model: type[BaseModel]) -> list[str]:
    """The query fields of `model` declared as lists (`list[X] | None`)."""

    def is_list(annotation: Any) -> bool:
        return get_origin(annotation) is list or any(is_list(a) for a in get_args(annotation))

    return [name for name, info in model.model_fields.items() if is_list(info.annotation)]


def request_path(request: Request) -> str:
    """The path the client asked for (without an API Gateway stage prefix)."""
    context = request.context or {}
    return str(context.get("path") or context.get("resourcePath") or "/")


def public_base_url(request: Request) -> str:
    """Scheme and host the client used, for links such as `$schema`."""
    headers: Mapping[str, str] = request.headers or {}
    host = headers.get("host", "localhost")
    proto = headers.get(
        "x-forwarded-proto", "http" if host.startswith(("127.", "localhost")) else "https"
    )
    stage = (request.context or {}).get("stage")
    # API Gateway's default domain serves the app under its stage name.
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return f"{proto}://{host}{prefix}"
