"""The embedded AWS's write-ahead journal: nothing the local stack acknowledged is lost.

moto keeps DynamoDB in memory. Every DynamoDB request that changes data and
that moto answered 2xx is appended here, in the order moto applied it, and is
on disk (fdatasync, one for every group of concurrent writers) before its
answer goes out. A start loads the newest snapshot and replays the journal
segments after it, so `kill -9` of the whole stack loses nothing it answered.
A transaction is one request, so it is one record and replays whole.

Files in `<state dir>/journal/`: `<n>.log` segments, each a run of records
(4-byte length, 4-byte CRC-32, JSON payload). A record cut short by a crash
was never acknowledged (its answer waits for the sync), so reading stops there.
A segment is sealed when it grows past `rotate_bytes`; a compaction, in a
process of its own and at low priority, folds the sealed segments into
`dynamodb.json` (which names the last segment it holds) and they are deleted.
A clean stop writes the snapshot from moto itself once the stack has stopped
(`checkpoint`), so the next start replays nothing. The request path never
scans a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">II")
#: A segment is sealed (and folded into the snapshot) past this size. Replaying
#: costs what moto spent on the writes (~5-10 ms each on this kind of machine),
#: so this bounds a start after a crash to some seconds of replay.
ROTATE_BYTES = 2 * 1024 * 1024

log = logging.getLogger("tickwork.journal")


@dataclass(frozen=True)
class Write:
    """One DynamoDB request as moto received it: enough to send it again."""

    target: str  # X-Amz-Target, e.g. DynamoDB_20120810.PutItem
    region: str
    access_key: str
    body: bytes

    def encode(self) -> bytes:
        return json.dumps(
            {
                "target": self.target,
                "region": self.region,
                "access_key": self.access_key,
                "body": self.body.decode(),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Write:
        data = json.loads(payload)
        return cls(data["target"], data["region"], data["access_key"], data["body"].encode())


def journal_dir(state_dir: Path) -> Path:
    return state_dir / "journal"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """The journal's segments, oldest first."""
    if not directory.exists():
        return []
    found = [(int(p.stem), p) for p in directory.glob("*.log") if p.stem.isdigit()]
    return sorted(found)


def read_segment(path: Path) -> Iterator[Write]:
    """The whole records of one segment. A torn tail (a crash in the middle of
    an append, never acknowledged) is cut off the file, so it cannot sit
    between two later records."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            break
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        yield Write.decode(payload)
        offset = start + length
    if offset < len(data):
        log.warning("journal %s: %d torn bytes at its end cut off", path.name, len(data) - offset)
        with path.open("r+b") as handle:
            handle.truncate(offset)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalClosed(RuntimeError):
    pass


@contextlib.contextmanager
def compaction_lock(state_dir: Path) -> Iterator[None]:
    """One writer of the snapshot at a time per state dir: a compaction, or
    the checkpoint of a clean stop."""
    import fcntl

    directory = journal_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "compact.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class Journal:
    """Appends records to the open segment. `order` is held by the caller across
    moto's applying a write and its append, so the journal's order is moto's;
    `sync(n)` returns once record n is on disk (one fdatasync per group)."""

    def __init__(
        self,
        directory: Path,
        first_segment: int,
        *,
        rotate_bytes: int = ROTATE_BYTES,
        on_seal: Callable[[int], None] = lambda number: None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._rotate_bytes = rotate_bytes
        self._on_seal = on_seal
        self.order = threading.Lock()
        self._sync_lock = threading.Lock()
        self._appended = 0
        self._synced = 0
        self._number = first_segment
        self._fd = self._open(first_segment)
        self._size = 0
        #: (fd, last record appended to it): read as one value by `sync`.
        self._tail = (self._fd, 0)
        self.closed = False

    @property
    def segment(self) -> int:
        """The number of the segment being written."""
        return self._number

    def _open(self, number: int) -> int:
        fd = os.open(self._dir / f"{number:08d}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self._dir)  # the new name survives a crash too
        return fd

    def append(self, write: Write) -> int:
        """Append one record (the caller holds `order`); returns its number for
        `sync`. Raises JournalClosed once the journal is closed."""
        if self.closed:
            raise JournalClosed("the embedded AWS is stopping")
        payload = write.encode()
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        view = memoryview(record)
        while view:
            view = view[os.write(self._fd, view) :]
        self._appended += 1
        self._size += len(record)
        self._tail = (self._fd, self._appended)
        if self._size >= self._rotate_bytes:
            self._seal()
        return self._appended

    def sync(self, record: int) -> None:
        """Return once `record` is on disk; a writer that finds its record synced
        by another's fdatasync returns without one (group commit)."""
        if self._synced >= record:
            return
        with self._sync_lock:
            if self._synced >= record:
                return
            fd, last = self._tail
            os.fdatasync(fd)
            self._synced = max(self._synced, last)

    def _seal(self) -> None:
        # Under `order`; takes the sync lock after it (sync never takes `order`).
        with self._sync_lock:
            os.fdatasync(self._fd)
            self._synced = self._appended
            os.close(self._fd)
            sealed = self._number
            self._number += 1
            self._fd = self._open(self._number)
            self._size = 0
            self._tail = (self._fd, self._appended)
        self._on_seal(sealed)

    def close(self, last_words: Callable[[int], None] | None = None) -> None:
        """Sync and close. `last_words(segment)` runs first, with writes held
        off (a write that comes meanwhile waits, then finds the journal closed
        and is refused): for the checkpoint of a clean stop."""
        with self.order, self._sync_lock:
            os.fdatasync(self._fd)
            if last_words is not None:
                last_words(self._number)
            os.close(self._fd)
            self.closed = True


def snapshot_path(state_dir: Path) -> Path:
    return state_dir / "dynamodb.json"


def load(endpoint_url: str, stage: str, state_dir: Path) -> tuple[int, int, int]:
    """Fill freshly provisioned tables from the snapshot and the journal after it.
    Returns (items restored, records replayed, last segment read)."""
    from infra.local import restore

    for stale in state_dir.glob(".snapshot-*.json"):
        stale.unlink()  # a compaction killed before its rename
    items, through = restore(endpoint_url, stage, snapshot_path(state_dir))
    replayed = 0
    last = through
    for number, path in segments(journal_dir(state_dir)):
        if number <= through:
            path.unlink()  # folded already; a crash came before its deletion
            continue
        replayed += replay(endpoint_url, read_segment(path))
        last = number
    return items, replayed, last


def replay(endpoint_url: str, writes: Iterator[Write]) -> int:
    """Send recorded writes to moto again, in order, on one connection."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    count = 0
    try:
        for write in writes:
            connection.request(
                "POST",
                "/",
                body=write.body,
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": write.target,
                    "Authorization": (
                        f"AWS4-HMAC-SHA256 Credential={write.access_key}/20000101/"
                        f"{write.region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
                    ),
                },
            )
            answer = connection.getresponse()
            text = answer.read()
            if answer.status >= 300:
                # Not expected (moto is deterministic); say so and go on, as a
                # restore of a table the stage no longer has would.
                log.warning("journal replay: %s answered %d %s", write.target, answer.status, text)
            count += 1
    finally:
        connection.close()
    return count


def compact(stage: str, state_dir: Path, through: int) -> None:
    """Fold the snapshot and the segments up to `through` into a new snapshot,
    on a moto of this process's own. One compaction at a time per state dir
    (a lock file), and never backwards: one that outlived its stack cannot
    put an older snapshot over a newer one."""
    from infra.embedded_aws import EmbeddedAws
    from infra.local import provision, restore, snapshot

    directory = journal_dir(state_dir)
    with compaction_lock(state_dir):
        aws = EmbeddedAws()
        aws.start()
        try:
            provision(aws.endpoint_url, stage)
            path = snapshot_path(state_dir)
            _, folded = restore(aws.endpoint_url, stage, path)
            if folded >= through:
                return
            for number, segment in segments(directory):
                if folded < number <= through:
                    replay(aws.endpoint_url, read_segment(segment))
            snapshot(aws.endpoint_url, stage, path, journal_through=through)
        finally:
            aws.stop()


def delete_through(state_dir: Path, through: int) -> None:
    for number, path in segments(journal_dir(state_dir)):
        if number <= through:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fold = sub.add_parser("compact", help="fold sealed segments into the snapshot")
    fold.add_argument("--state-dir", type=Path, required=True)
    fold.add_argument("--stage", required=True)
    fold.add_argument("--through", type=int, required=True)
    args: Any = parser.parse_args(argv)
    from infra.local import local_credentials

    os.nice(10)  # the stack's requests come first
    local_credentials()
    compact(args.stage, args.state_dir, args.through)
    return 0


if __name__ == "__main__":
    sys.exit(main())
