"""The connection DynamoDB transactions go through (one per store and process)."""

from __future__ import annotations

from pynamodb.connection import Connection

from chalicelib.settings import Settings
from chalicelib.storage.tables import _Meta


class TransactionConnection:
    """Built on first use: making its botocore client costs ~100 ms, so a store
    makes it once, and only if it writes a transaction at all."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: Connection | None = None

    def get(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(
                region=self._settings.region,
                host=self._settings.aws_endpoint_url,
                max_retry_attempts=_Meta.max_retry_attempts,
                max_pool_connections=self._settings.aws_max_connections,
            )
        return self._connection
