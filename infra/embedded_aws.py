"""moto's server in a thread, which also notices when DynamoDB data changes.

The local stack snapshots its tables only after a write, so an idle stack
costs nothing and a busy one loses at most one snapshot interval on a crash.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

_WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: Decides, from a DynamoDB operation name, whether to answer it with throttling.
FaultInjector = Callable[[str], bool]

_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput (injected).",
    }
).encode()


class EmbeddedAws:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, throttle: FaultInjector | None = None
    ) -> None:
        """`throttle` (for fault tests) may answer DynamoDB requests with a
        ThrottlingException before moto sees them, as DynamoDB does under load."""
        self._throttle = throttle
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._dirty = threading.Event()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._host,
            self._port,
            self._watch(moto_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-aws", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def take_dirty(self) -> bool:
        """Whether DynamoDB was written since the last call."""
        dirty = self._dirty.is_set()
        self._dirty.clear()
        return dirty

    def _watch(self, moto_app: WsgiApp) -> WsgiApp:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            operation = target.rpartition(".")[2]
            if target.startswith("DynamoDB_"):
                if self._throttle is not None and self._throttle(operation):
                    start_response(
                        "400 Bad Request",
                        [
                            ("Content-Type", "application/x-amz-json-1.0"),
                            ("Content-Length", str(len(_THROTTLED))),
                        ],
                    )
                    return [_THROTTLED]
                if operation in _WRITES:
                    self._dirty.set()
            return moto_app(environ, start_response)

        return app
