"""The API's routes on the Chalice app; a route's module is imported by its first request.

Chalice dispatches a request by `app.routes`, so `mount()` registers every
route there, with the options its blueprint gives it, when `app.app` is first
read. It does so from `route_index.py` (which module declares which route,
generated from the route modules) without importing the route modules: each
route's view imports its module, with its pydantic models, services and
stores, when it first serves. A request loads the module of its own route and
not the twelve others. Everything about a route stays declared where it is
served (`routing.endpoint`); a test fails when the index is stale (`make
routes` rewrites it). `every_route()` imports every route module, for
`/openapi.json`. docs/decisions.md (Cold start) says why.

This module imports only Chalice and the settings: the API function reads it
at its cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from chalice.app import Chalice, CORSConfig, DecoratorAPI, Response

from chalicelib.api.route_index import INDEX
from chalicelib.settings import deploy_time

if TYPE_CHECKING:
    from chalicelib.api.routing import Route

#: The route modules, in the order their routes are registered: the order of
#: the paths in `/openapi.json` (as it has always been: clients and diffs of the
#: document see it) and in the API Gateway template. A new route module goes
#: here, then `make routes`.
MODULES = (
    "chalicelib.api.meta",
    "chalicelib.api.seeds.catalogue",
    "chalicelib.api.seeds.records",
    "chalicelib.api.seeds.synapse",
    "chalicelib.api.v1.admin_tokens",
    "chalicelib.api.v1.hitl",
    "chalicelib.api.v1.observability",
    "chalicelib.api.v1.queue",
    "chalicelib.api.v1.runs",
    "chalicelib.api.v1.scheduled_tasks",
    "chalicelib.api.v1.dead_letters",
    "chalicelib.api.v1.me",
    "chalicelib.api.v1.schedule_preview",
)

#: Request media types the routes accept; bodies are parsed as JSON whatever
#: the type says, so `curl -d` without a Content-Type header works too.
CONTENT_TYPES = [
    "application/json",
    "application/merge-patch+json",
    "application/problem+json",
    "application/x-www-form-urlencoded",
    "text/plain",
]

#: Request headers the console sends beyond those Chalice always allows
#: (`Authorization`, `Content-Type`, ...).
CORS_ALLOW_HEADERS = ("If-Match",)
#: Seconds a browser may cache a preflight answer.
CORS_MAX_AGE_S = 600


def cors_config(origin: str | None) -> CORSConfig | None:
    """CORS for the console's origin on `/v1` routes; None (no CORS) without one."""
    if origin is None:
        return None
    return CORSConfig(
        allow_origin=origin,
        allow_headers=list(CORS_ALLOW_HEADERS),
        max_age=CORS_MAX_AGE_S,
    )


#: Taken when the routes are registered (Chalice's `cors=` at decoration time):
#: API Gateway's preflight (OPTIONS) answers are generated from each route's
#: configuration at deploy time, so this cannot wait for the first request.
CORS = cors_config(deploy_time().console_origin)

View = Callable[..., Response]


def add_route(target: DecoratorAPI, method: str, path: str, view: View) -> None:
    """Register `view` (named as its handler) as `method path` on `target`, the
    app or a route module's blueprint, with the options every route has."""
    # Only the canonical API serves the console; the seed surfaces stay same-origin.
    cors = CORS if path.startswith("/v1/") else None
    target.route(path, methods=[method], content_types=CONTENT_TYPES, cors=cors)(view)


def mount(app: Chalice) -> Chalice:
    """Register every route of the index on `app`, each with a view that imports
    its module on first call and then serves as the module's own view does."""
    for module, routes in INDEX.items():
        for method, path, name in routes:
            add_route(app, method, path, _served_by(app, module, method, path, name))
    return app


def _served_by(app: Chalice, module: str, method: str, path: str, name: str) -> View:
    #: The route, found once by the first request (later ones import and search nothing).
    found: list[Route] = []

    def view(**path_params: str) -> Response:
        # The first request's imports: routing (pydantic, the token service), then
        # the route's module (Python's import lock serialises concurrent first calls).
        from chalicelib.api import routing

        if not found:
            import_module(module)
            found.append(routing.declared(method, path))
        request = app.current_request
        assert request is not None, "Chalice sets the request before it calls a view"
        return routing.serve(found[0], request, path_params)

    view.__name__ = name
    return view


def every_route() -> list[Route]:
    """Every route, in the order they are registered (this imports every route module)."""
    from chalicelib.api.routing import ROUTES

    for module in INDEX:
        import_module(module)
    return [route for module in INDEX for route in ROUTES if route.module == module]
