"""Size limits that keep items under DynamoDB's 400 KB (DESIGN §2.7)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import FieldError, PayloadTooLarge


def ensure_args_fit(args: Any, max_bytes: int, location: str = "body.args") -> None:
    """Refuse (413) `args` whose compact JSON exceeds `max_bytes` (DESIGN §2.7)."""
    size = len(json.dumps(args, separators=(",", ":")).encode())
    if size > max_bytes:
        raise PayloadTooLarge(
            f"{location} is {size} bytes; the limit is {max_bytes}",
            [FieldError(location, f"must be at most {max_bytes} bytes of JSON", size)],
        )
