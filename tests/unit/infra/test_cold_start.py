"""What each Lambda function's cold start imports (module sets, not times).

Each path runs in a fresh interpreter as Lambda runs one, with the function's
environment (`bench.cold_start.run_child`): `import app`, the handler its
Handler string names, then its first call (for the API, a request) and the
`Services` parts it builds. The times are the benchmark's; here, which modules
each path loads.
"""

from __future__ import annotations

import sys

import pytest

from bench.cold_start import FIRST_CALL, Function, functions, run_child
from chalicelib.api.mount import MODULES

NON_HTTP = ("tick", "tick_shard", "execute_jobs", "dead_letters")
#: All that `import app` and a non-HTTP handler load of ours: the handlers, and
#: what they read before their first call.
HANDLERS_ONLY = {
    "chalicelib",
    "chalicelib.clock",
    "chalicelib.engine",
    "chalicelib.engine.fanout",
    "chalicelib.engine.handlers",
    "chalicelib.logs",
    "chalicelib.settings",
    "chalicelib.wiring",
}
#: What the API's handler adds: the route table, without the route modules.
ROUTE_TABLE = {"chalicelib.api", "chalicelib.api.mount", "chalicelib.api.route_index"}
#: The executor's own modules (the tick and the API never run a job).
EXECUTOR = {
    "chalicelib.engine.executor",
    "chalicelib.engine.runner",
    "chalicelib.engine.slots",
    "chalicelib.engine.recorder",
    "chalicelib.engine.restarts",
}
#: The API's own services (the engine never serves a request).
API_SERVICES = {"chalicelib.jobs.service", "chalicelib.tasks.service", "chalicelib.tasks.runs"}


def _loaded(function: Function, first_call: bool) -> set[str]:
    found = run_child(
        sys.executable,
        function.statement(),
        function.environment(),
        function.first_call() if first_call else "",
    )
    modules = found["modules"]
    assert isinstance(modules, list)
    return set(modules)


@pytest.fixture(scope="module")
def paths() -> dict[tuple[str, bool], set[str]]:
    """(function name, with its first call) -> the modules that path loads."""
    return {
        (function.name, first_call): _loaded(function, first_call)
        for function in functions()
        for first_call in (False, True)
    }


def _ours(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] == "chalicelib"}


def _under(modules: set[str], package: str) -> set[str]:
    return {name for name in modules if name == package or name.startswith(package + ".")}


def test_every_function_of_the_app_is_measured() -> None:
    assert sorted(function.name for function in functions()) == sorted(FIRST_CALL)
    assert set(NON_HTTP) == set(FIRST_CALL) - {"api_handler"}


@pytest.mark.parametrize("name", NON_HTTP)
def test_a_non_http_handler_loads_no_route_model_store_or_action(
    paths: dict[tuple[str, bool], set[str]], name: str
) -> None:
    loaded = paths[name, False]
    assert _ours(loaded) == HANDLERS_ONLY
    for heavy in ("pydantic", "pynamodb", "croniter", "botocore"):
        assert _under(loaded, heavy) == set(), heavy


@pytest.mark.parametrize("name", NON_HTTP)
def test_a_non_http_first_call_builds_no_api(
    paths: dict[tuple[str, bool], set[str]], name: str
) -> None:
    loaded = paths[name, True]
    assert _under(loaded, "chalicelib.api") == set()
    assert loaded & API_SERVICES == set()


@pytest.mark.parametrize("name", ["tick", "tick_shard"])
def test_the_tick_never_loads_the_executor(
    paths: dict[tuple[str, bool], set[str]], name: str
) -> None:
    loaded = paths[name, True]
    assert "chalicelib.engine.tick" in loaded  # the first call did build the tick
    assert loaded & EXECUTOR == set()


@pytest.mark.parametrize("name", ["execute_jobs", "dead_letters"])
def test_the_executor_never_loads_the_tick(
    paths: dict[tuple[str, bool], set[str]], name: str
) -> None:
    loaded = paths[name, True]
    assert "chalicelib.engine.executor" in loaded
    assert "chalicelib.engine.tick" not in loaded


def test_the_api_registers_its_routes_without_loading_their_modules(
    paths: dict[tuple[str, bool], set[str]],
) -> None:
    loaded = paths["api_handler", False]
    assert _ours(loaded) == HANDLERS_ONLY | ROUTE_TABLE
    for heavy in ("pydantic", "pynamodb", "croniter", "botocore"):
        assert _under(loaded, heavy) == set(), heavy


def test_a_request_loads_the_module_of_its_route_only(
    paths: dict[tuple[str, bool], set[str]],
) -> None:
    loaded = paths["api_handler", True]  # GET /v1/scheduled-tasks, then the tasks service
    assert loaded & set(MODULES) == {"chalicelib.api.v1.scheduled_tasks"}
    assert "chalicelib.api.openapi" not in loaded
    assert loaded & EXECUTOR == set()
    assert "chalicelib.engine.tick" not in loaded


def test_no_path_loads_boto3_or_dev_tooling(paths: dict[tuple[str, bool], set[str]]) -> None:
    # botocore is used directly (chalicelib/jobs/sqs.py); boto3 would add its import time.
    for (name, _), loaded in paths.items():
        for package in ("boto3", "jinja2", "pytest", "moto", "infra", "tests"):
            assert _under(loaded, package) == set(), (name, package)
