from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.tasks.model import Task, TaskSpec
from chalicelib.wiring import Services
from tests.functional.engine_helpers import ACME, Pipeline


class Api:
    """`chalice.test.Client` with JSON in and out."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def request(
        self,
        method: str,
        path: str,
        *,
        token: Any = None,
        json_body: Any = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers.update(token.headers)
        if json_body is not None:
            body = json.dumps(json_body)
        payload = (body or "").encode()
        return self._client.http.request(method, path, headers=all_headers, body=payload)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def pipeline(services: Services) -> Iterator[Pipeline]:
    with Client(app) as client:
        yield Pipeline(client, services)


@pytest.fixture
def make_task(services: Services) -> Callable[..., Task]:
    """Factory: a task of project `acme` firing every 10 s through `record`."""
    counter = iter(range(1_000_000))

    def make(**spec: Any) -> Task:
        fields = {
            "name": f"t{next(counter)}",
            "schedule": "*/10 * * * * *",
            "action": "record",
            **spec,
        }
        return services.tasks.create(ACME, TaskSpec.model_validate(fields))

    return make
