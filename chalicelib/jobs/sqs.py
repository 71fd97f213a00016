"""The jobs queue: what goes into SQS, and how it is sent.

A job message carries a job id (the job itself lives in DynamoDB), how many
times the executor has re-sent it after an infrastructure error, and, sent by
the code that just created the job, the job's row as written: the executor
starts from that instead of reading the job (one read less per run). A row
may be stale by the time the message arrives (the job was cancelled meanwhile,
or a duplicate delivery started it); every write the executor makes is
conditional on the status and attempt it saw, and a claim that finds the job
changed reads it afresh, exactly as with a read that raced a change.
botocore is used directly: boto3 would add its own import time to every cold
start, and this module needs one client.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.settings import Settings

#: SQS's largest DelaySeconds; later work waits in DynamoDB for the tick.
MAX_DELAY_S = 900
#: Watchdog instant of a job handed to SQS: if it has not started this long
#: after its time, the tick sends it again (a lost message, a restarted stack).
REDELIVERY_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    redeliveries: int = 0
    #: The job's row as its creator wrote it (DynamoDB's attribute-value JSON),
    #: or None: the executor reads the job.
    row: dict[str, Any] | None = None

    def body(self) -> str:
        data: dict[str, Any] = {"job_id": self.job_id, "redeliveries": self.redeliveries}
        if self.row is not None:
            data["row"] = self.row
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> JobMessage:
        """Raises ValueError for a body that is not a job message."""
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
            raise ValueError(f"not a job message: {body[:200]!r}")
        row = data.get("row")
        return cls(
            data["job_id"], int(data.get("redeliveries", 0)), row if isinstance(row, dict) else None
        )

    def again(self) -> JobMessage:
        """The message re-sent after an infrastructure error: counted, and
        without the row (the job may have moved on; the executor reads it)."""
        return JobMessage(self.job_id, self.redeliveries + 1)


#: Entries of one SendMessageBatch, SQS's limit.
SEND_BATCH_SIZE = 10
#: Largest row a message carries (bytes of its JSON): SQS bills each 64 KB of
#: a request as one request, so a full batch of rows stays within one; a job
#: with larger args goes without its row and is read.
MAX_ROW_BYTES = 4 * 1024


def with_row(job_id: str, row: dict[str, Any]) -> JobMessage:
    """The message of a job just created, carrying its row unless too large."""
    fits = len(json.dumps(row, separators=(",", ":"))) <= MAX_ROW_BYTES
    return JobMessage(job_id, row=row if fits else None)


#: Seconds a message is made to arrive before its job's time, to absorb the
#: latency of receiving it; the executor waits out the rest (DESIGN §2.8).
ARRIVE_EARLY_S = 1


def delay_until(at: datetime, now: datetime) -> int:
    """Whole seconds SQS may hold a message due at `at` (0-900).

    Rounded down and a second short: the message arrives one to two seconds
    early and the executor waits until `at`, so a job neither starts early nor
    waits for a receive poll to notice it.
    """
    return sqs_delay(math.floor((at - now).total_seconds()) - ARRIVE_EARLY_S)


def sqs_delay(seconds: int) -> int:
    """`seconds` as a DelaySeconds SQS takes (0-900)."""
    return max(0, min(MAX_DELAY_S, seconds))


class JobQueue:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._url_lock = threading.Lock()

    def _sqs(self) -> Any:
        with self._lock:
            if self._client is None:
                import botocore.config
                import botocore.session

                session = botocore.session.get_session()
                self._client = session.create_client(
                    "sqs",
                    region_name=self._settings.region,
                    endpoint_url=self._settings.aws_endpoint_url,
                    config=botocore.config.Config(
                        max_pool_connections=self._settings.aws_max_connections
                    ),
                )
            return self._client

    def url(self, logical: str = "jobs") -> str:
        cached = self._urls.get(logical)
        if cached is not None:
            return cached
        client = self._sqs()
        with self._url_lock:  # the tick's shard threads all ask at once on a cold start
            if logical not in self._urls:
                name = self._settings.queue_name(logical)
                self._urls[logical] = client.get_queue_url(QueueName=name)["QueueUrl"]
            return self._urls[logical]

    def send(self, message: JobMessage, delay_s: int = 0) -> None:
        self._sqs().send_message(
            QueueUrl=self.url(),
            MessageBody=message.body(),
            DelaySeconds=sqs_delay(delay_s),
        )

    def send_many(self, messages: list[tuple[JobMessage, int]]) -> list[JobMessage]:
        """Send (message, delay_s) pairs to the jobs queue ten to a SendMessageBatch;
        returns the messages SQS did not take."""
        failed: list[JobMessage] = []
        url = self.url()
        for start in range(0, len(messages), SEND_BATCH_SIZE):
            batch = messages[start : start + SEND_BATCH_SIZE]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": message.body(),
                    "DelaySeconds": sqs_delay(delay),
                }
                for i, (message, delay) in enumerate(batch)
            ]
            response = self._sqs().send_message_batch(QueueUrl=url, Entries=entries)
            failed += [batch[int(f["Id"])][0] for f in response.get("Failed", [])]
        return failed
