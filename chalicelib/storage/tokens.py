"""Token storage: only hashes of secrets are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.clock import from_ms, to_ms
from chalicelib.storage.binding import Tables
from chalicelib.storage.errors import StorageConflict, condition_failed
from chalicelib.storage.pages import Page, decode_cursor, read_page
from chalicelib.storage.tables import TokenRecord


@dataclass(frozen=True)
class StoredToken:
    id: str
    token_hash: str
    project_id: str
    role: str
    name: str
    created_at: datetime


def _to_token(record: TokenRecord) -> StoredToken:
    return StoredToken(
        id=record.id,
        token_hash=record.token_hash,
        project_id=record.project_id,
        role=record.role,
        name=record.name,
        created_at=from_ms(int(record.created_ms)),
    )


class TokenStore:
    """A stage's API tokens."""

    def __init__(self, tables: Tables) -> None:
        self._tokens = tables.tokens

    def put(self, token: StoredToken) -> None:
        """Store a token; StorageConflict if its hash is already stored."""
        record = self._tokens(
            token_hash=token.token_hash,
            id=token.id,
            project_id=token.project_id,
            role=token.role,
            name=token.name,
            created_ms=to_ms(token.created_at),
        )
        try:
            record.save(condition=self._tokens.token_hash.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                raise StorageConflict("token") from exc
            raise

    def by_hash(self, token_hash: str) -> StoredToken | None:
        """The token with this secret hash; a consistent read, so a revoked token
        stops working at once."""
        try:
            return _to_token(self._tokens.get(token_hash, consistent_read=True))
        except self._tokens.DoesNotExist:
            return None

    def by_id(self, token_id: str) -> StoredToken | None:
        for record in self._tokens.by_id.query(token_id, limit=1):
            return _to_token(record)
        return None

    def list(self, *, limit: int, cursor: str | None) -> Page[StoredToken]:
        """Every token, newest first."""
        start = decode_cursor(cursor, expect={"kind": "token"})
        results = self._tokens.by_kind.query(
            "token", scan_index_forward=False, page_size=limit, last_evaluated_key=start
        )
        page = read_page(self._tokens, results, limit)
        return Page([_to_token(r) for r in page.items], page.next_cursor)

    def delete(self, token: StoredToken) -> None:
        """Delete a token; StorageConflict if it is already gone."""
        try:
            self._tokens(token_hash=token.token_hash).delete(
                condition=self._tokens.token_hash.exists()
            )
        except DeleteError as exc:
            if condition_failed(exc):
                raise StorageConflict("gone") from exc
            raise
