"""Models shared by `/v1` routes: list paging and size limits."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import FieldError, PayloadTooLarge


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(50, ge=1, le=200, description="Items per page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")


def ensure_args_fit(args: Any, max_bytes: int, location: str = "body.args") -> None:
    """Refuse (413) `args` whose compact JSON exceeds `max_bytes` (DESIGN §2.7)."""
    size = len(json.dumps(args, separators=(",", ":")).encode())
    if size > max_bytes:
        raise PayloadTooLarge(
            f"{location} is {size} bytes; the limit is {max_bytes}",
            [FieldError(location, f"must be at most {max_bytes} bytes of JSON", size)],
        )
