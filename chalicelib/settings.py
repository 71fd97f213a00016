"""Settings: one frozen object built from the environment.

Nothing else in the code reads `os.environ`; handlers receive a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    region: str = "us-east-1"
    #: Endpoint of the embedded AWS (moto) for the local stack and tests;
    #: None in AWS, where boto3 finds the real endpoints.
    aws_endpoint_url: str | None = None
    #: Number of shards of the sparse due indexes (partition key values
    #: "0".."N-1"). The tick queries every shard, so the shard count bounds the
    #: write rate per partition without making the tick read idle tasks.
    due_shards: int = 8
    #: Largest accepted `args` object, in bytes of compact JSON (DESIGN §2.7).
    max_args_bytes: int = 64 * 1024
    #: Largest accepted request body, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: How far ahead of now the tick fires (SQS DelaySeconds carries each job to
    #: its second). At least one tick period, so no firing waits for a tick.
    lookahead_s: float = 75.0
    #: How often a firing that waits for a free slot (`on_overlap: queue`) looks again.
    slot_poll_s: int = 2

    def table_name(self, logical: str) -> str:
        """Physical DynamoDB table name of a logical table (`tasks`, `jobs`, ...)."""
        return f"tickwork-{self.stage}-{logical}"

    def queue_name(self, logical: str) -> str:
        """Physical SQS queue name (`jobs`, `jobs-dlq`)."""
        return f"tickwork-{self.stage}-{logical}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            stage=env.get("TICKWORK_STAGE", cls.stage),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            aws_endpoint_url=env.get("TICKWORK_AWS_ENDPOINT") or None,
            due_shards=int(env.get("TICKWORK_DUE_SHARDS", cls.due_shards)),
            lookahead_s=float(env.get("TICKWORK_LOOKAHEAD_SECONDS", cls.lookahead_s)),
        )
