"""Named storage exceptions: a failed condition is a domain event, not a crash."""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException, TransactWriteError


class StorageConflict(Exception):
    """A conditional write lost: the item changed or a unique claim is taken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def condition_failed(exc: PynamoDBException) -> bool:
    """Whether a PynamoDB error is a failed condition (and not, say, throttling)."""
    return exc.cause_response_code == "ConditionalCheckFailedException"


def failed_positions(exc: TransactWriteError) -> list[int]:
    """Positions of the transaction's items whose condition failed."""
    if exc.cause_response_code != "TransactionCanceledException":
        return []
    return [
        i
        for i, reason in enumerate(exc.cancellation_reasons)
        if reason is not None and reason.code == "ConditionalCheckFailed"
    ]
