"""The exceptions an API answer is made from: every error a caller sees.

    TickworkError                 (500: a bug; rendered without internals)
    ├── BadRequest                (400: malformed JSON, bad parameter)
    ├── Unauthenticated           (401: missing, unknown or revoked token)
    ├── Forbidden                 (403: role or trigger policy refuses)
    ├── NotFound                  (404: absent, or another project's)
    ├── Conflict                  (409: duplicate name or id, decided twice)
    ├── PreconditionFailed        (412: If-Match does not match `version`)
    ├── PayloadTooLarge           (413: `args` or body over its cap)
    └── ValidationFailed          (422: carries FieldError entries)

Each API surface renders these in its own format in one place, its `Surface`:
problem+json (`chalicelib.api.errors.problems`), Matrix (`chalicelib.api.errors.matrix`)
or Huawei-style (`chalicelib.api.seeds.records`).

Three other exceptions never reach a caller as such: `ActionFailed` and
`LogLimitExceeded` (chalicelib.actions) are how a run ends, recorded on the job;
`StorageConflict` (chalicelib.storage) is a conditional write that lost, which
the services turn into a Conflict or a retry; `ScheduleError`
(chalicelib.schedules.model) is a schedule that does not parse, which the task model
turns into a ValidationFailed at the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one input: `location` is like `body.schedule` or `query.limit`."""

    location: str
    message: str
    value: Any = None


@dataclass
class TickworkError(Exception):
    detail: str = "internal error"
    errors: list[FieldError] = field(default_factory=list)

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __str__(self) -> str:
        return self.detail


class BadRequest(TickworkError):
    status = 400
    title = "Bad Request"


class Unauthenticated(TickworkError):
    status = 401
    title = "Unauthorized"


class Forbidden(TickworkError):
    status = 403
    title = "Forbidden"


class NotFound(TickworkError):
    status = 404
    title = "Not Found"


class Conflict(TickworkError):
    status = 409
    title = "Conflict"


class PreconditionFailed(TickworkError):
    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(TickworkError):
    status = 413
    title = "Payload Too Large"


class ValidationFailed(TickworkError):
    status = 422
    title = "Unprocessable Entity"

    @classmethod
    def at(cls, location: str, message: str, value: Any = None) -> ValidationFailed:
        """A validation failure of a single input."""
        return cls(f"{location}: {message}", [FieldError(location, message, value)])


def from_pydantic(exc: Any, prefix: str) -> ValidationFailed:
    """A pydantic `ValidationError` as a ValidationFailed whose locations start
    with `prefix` (`body`, `query`, ...): `('schedule',)` becomes `body.schedule`."""
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join([prefix, *(str(part) for part in error["loc"])])
        errors.append(FieldError(location, error["msg"], error.get("input")))
    detail = "; ".join(f"{e.location}: {e.message}" for e in errors) or "invalid input"
    return ValidationFailed(detail, errors)
