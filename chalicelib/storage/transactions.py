"""The connection a stage's DynamoDB transactions go through (one per `Tables`)."""

from __future__ import annotations

import threading

from pynamodb.connection import Connection


class TransactionConnection:
    """Built on first use: making its botocore client costs ~100 ms, so a
    stage's tables make it once, and only if a store writes a transaction at
    all. The items written are the stage's bound models, which name its tables."""

    def __init__(
        self,
        *,
        region: str,
        host: str | None,
        max_retry_attempts: int,
        max_pool_connections: int,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
    ) -> None:
        self._region = region
        self._host = host
        self._max_retry_attempts = max_retry_attempts
        self._max_pool_connections = max_pool_connections
        self._keys = (aws_access_key_id, aws_secret_access_key)
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def get(self) -> Connection:
        with self._lock:  # the stores of a stage share it, from many threads
            if self._connection is None:
                self._connection = Connection(
                    region=self._region,
                    host=self._host,
                    max_retry_attempts=self._max_retry_attempts,
                    max_pool_connections=self._max_pool_connections,
                    aws_access_key_id=self._keys[0],
                    aws_secret_access_key=self._keys[1],
                )
            return self._connection
