"""Tokens and who is calling (DESIGN §7 Auth).

A token is a random secret shown once; only its SHA-256 is stored. SHA-256
rather than a slow password hash: the secrets carry 256 random bits, so there
is nothing to brute-force, and authentication stays one GetItem per request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chalicelib.clock import Clock, IdFactory
from chalicelib.errors import Conflict, Forbidden, NotFound, Unauthenticated
from chalicelib.storage.errors import StorageConflict
from chalicelib.storage.pages import Page
from chalicelib.storage.tokens import StoredToken, TokenStore

SECRET_PREFIX = "tw_"
#: The project `make run` creates, and the one the bootstrap admin token belongs to.
DEFAULT_PROJECT = "default"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller: a token of a project, with a role."""

    token_id: str
    project_id: str
    role: Role
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def label(self) -> str:
        """How records name this token (`requested_by`, `decided_by`, `changed_by`):
        its name, readable, and its id, unique when names repeat."""
        return f"{self.name} ({self.token_id})"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this endpoint needs an admin token")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def request_token(headers: Mapping[str, str]) -> str | None:
    """The token a `/v1` request carries: `X-Auth-Token` decides when present,
    else `Authorization: Bearer`. Header names are matched case-insensitively."""
    lowered = {k.lower(): v for k, v in headers.items()}
    x_auth = lowered.get("x-auth-token", "").strip()
    return x_auth or bearer_token(lowered)


@dataclass(frozen=True)
class IssuedToken:
    token: StoredToken
    secret: str


class TokenService:
    def __init__(self, store: TokenStore, clock: Clock, ids: IdFactory) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids

    def authenticate(self, secret: str | None) -> Principal:
        """The principal of a secret; Unauthenticated if missing, unknown or revoked."""
        if not secret:
            raise Unauthenticated("missing token: send 'Authorization: Bearer <token>'")
        token = self._store.by_hash(hash_secret(secret))
        if token is None:
            raise Unauthenticated("unknown or revoked token")
        return Principal(token.id, token.project_id, Role(token.role), token.name)

    def issue(self, project_id: str, role: Role, name: str) -> IssuedToken:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        return self._store_secret(secret, project_id, role, name, self._ids.new_id("tok"))

    def ensure(self, secret: str, project_id: str, role: Role, name: str) -> StoredToken:
        """Store a token with a known secret unless it is stored already (bootstrap)."""
        existing = self._store.by_hash(hash_secret(secret))
        if existing is not None:
            return existing
        try:
            return self._store_secret(secret, project_id, role, name, self._ids.new_id("tok")).token
        except Conflict:
            # Another process stored it between our read and our write.
            stored = self._store.by_hash(hash_secret(secret))
            assert stored is not None
            return stored

    def _store_secret(
        self, secret: str, project_id: str, role: Role, name: str, token_id: str
    ) -> IssuedToken:
        token = StoredToken(
            id=token_id,
            token_hash=hash_secret(secret),
            project_id=project_id,
            role=role.value,
            name=name,
            created_at=self._now(),
        )
        try:
            self._store.put(token)
        except StorageConflict as exc:
            raise Conflict("a token with this secret exists") from exc
        return IssuedToken(token, secret)

    def list(self, *, limit: int, cursor: str | None) -> Page[StoredToken]:
        return self._store.list(limit=limit, cursor=cursor)

    def revoke(self, token_id: str) -> None:
        token = self._store.by_id(token_id)
        if token is None:
            raise NotFound(f"token '{token_id}' not found")
        try:
            self._store.delete(token)
        except StorageConflict as exc:
            raise NotFound(f"token '{token_id}' not found") from exc

    def _now(self) -> datetime:
        return self._clock.now()
