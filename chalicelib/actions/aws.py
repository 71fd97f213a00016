"""botocore clients for the actions that call AWS (`run_query`, `invoke_lambda`,
`trigger_ai` on Bedrock), and how their errors reach the user.

botocore, not boto3: boto3 adds its own import time to every cold start, and
it is imported inside functions so that a Lambda whose jobs never call AWS
does not pay for it at all. Clients are built on first use and shared by
every run of the process (they are thread-safe).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.actions.base import ActionFailed
from chalicelib.settings import Settings

_clients: dict[tuple[str, str, str | None, int, int], Any] = {}
_lock = threading.Lock()


def client(
    settings: Settings, service: str, *, read_timeout_s: int = 60, max_attempts: int = 3
) -> Any:
    """A botocore client of `service` in the settings' region and endpoint.

    `max_attempts` counts the first call: 1 for calls that must not run twice
    when only the answer was lost (a Lambda invocation).
    """
    key = (service, settings.region, settings.aws_endpoint_url, read_timeout_s, max_attempts)
    with _lock:
        if key not in _clients:
            import botocore.config
            import botocore.session

            _clients[key] = botocore.session.get_session().create_client(
                service,
                region_name=settings.region,
                endpoint_url=settings.aws_endpoint_url,
                config=botocore.config.Config(
                    connect_timeout=10,
                    read_timeout=read_timeout_s,
                    retries={"mode": "standard", "total_max_attempts": max_attempts},
                ),
            )
        return _clients[key]


@contextmanager
def failing_as(what: str) -> Iterator[None]:
    """Turn an AWS error into ActionFailed("<what>: <code>: <message>")."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        message = error.get("Message", "")
        raise ActionFailed(f"{what}: {code}: {message}".rstrip(": ")) from exc
    except BotoCoreError as exc:
        raise ActionFailed(f"{what}: {exc}") from exc
