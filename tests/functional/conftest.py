from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.services import Services


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
