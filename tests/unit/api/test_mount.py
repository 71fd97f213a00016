"""The app's routes come from the committed route index (`chalicelib/api/mount.py`):
it must be what the route modules declare, and the app must register each
route as the module's own blueprint does."""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import Any

from chalice.app import Blueprint, Chalice

import chalicelib.api
from app import app
from chalicelib.api import mount, route_index
from chalicelib.api.routing import ROUTES
from infra import routes


def _table(chalice: Chalice) -> list[tuple[Any, ...]]:
    """What Chalice (and `chalice package`) reads of each route, in order."""
    return [
        (
            path,
            method,
            entry.view_name,
            entry.view_args,
            entry.content_types,
            entry.cors and (entry.cors.allow_origin, entry.cors.get_access_control_headers()),
            entry.api_key_required,
            entry.authorizer,
        )
        for path, methods in chalice.routes.items()
        for method, entry in methods.items()
    ]


def test_the_committed_route_index_is_the_generated_one() -> None:
    declared = routes.declared()
    assert declared == route_index.INDEX, "run `make routes`"
    assert routes.INDEX_PATH.read_text() == routes.render(declared), "run `make routes`"
    assert list(route_index.INDEX) == list(mount.MODULES)


def test_every_module_with_a_blueprint_is_a_route_module() -> None:
    found = set()
    for info in pkgutil.walk_packages(chalicelib.api.__path__, "chalicelib.api."):
        if isinstance(getattr(import_module(info.name), "bp", None), Blueprint):
            found.add(info.name)
    assert found == set(mount.MODULES)


def test_the_app_registers_each_route_as_its_blueprint_does() -> None:
    eager = Chalice(app_name="tickwork")
    for module in mount.MODULES:
        eager.register_blueprint(import_module(module).bp)
    assert _table(app) == _table(eager)


def test_every_route_is_in_the_index_order_whatever_was_imported_first() -> None:
    # This process imported the route modules in its own order (ROUTES's).
    listed = [(method, path) for found in route_index.INDEX.values() for method, path, _ in found]
    assert [(route.method, route.path) for route in mount.every_route()] == listed
    assert len(ROUTES) == len(listed)
