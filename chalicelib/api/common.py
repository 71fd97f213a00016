"""Models shared by `/v1` routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(50, ge=1, le=200, description="Items per page.")
    # Empty filters and cursors are refused (422), never sent to DynamoDB as empty keys.
    cursor: str | None = Field(
        None, min_length=1, description="`next_cursor` of the previous page."
    )
