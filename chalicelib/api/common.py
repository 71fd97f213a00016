"""Models shared by `/v1` routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(50, ge=1, le=200, description="Items per page.")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")
