"""`/v1/queue/observability/metrics`: what ended, how long it ran and waited (admin only)."""

from __future__ import annotations

from chalice.app import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.errors.problems import PROBLEMS
from chalicelib.api.routing import Call, endpoint
from chalicelib.metrics.model import MetricsSummary

bp = Blueprint(__name__)
TAGS = ("Observability",)


class MetricsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    window: int = Field(
        3600, ge=60, le=86_400, description="Seconds back from now to count (60 to 86400)."
    )


@endpoint(
    bp,
    "GET",
    "/v1/queue/observability/metrics",
    summary="Job metrics",
    surface=PROBLEMS,
    tags=TAGS,
    auth="admin",
    query=MetricsQuery,
    response=MetricsSummary,
    errors=(401, 403, 422),
)
def job_metrics(call: Call) -> MetricsSummary:
    """Jobs that ended in the window, for every project of the stage: counts by
    outcome (in total, per action, per minute) and run-time and queue-wait
    percentiles in ms. Counted by the minute, so the window starts at the
    beginning of the minute `window` seconds ago. A percentile is the upper
    bound of a histogram bucket: at most 2^(1/3) ≈ 1.26 x the true value."""
    q: MetricsQuery = call.query
    return call.services.metrics.summary(q.window)
