"""The local stack's state dir (`TICKWORK_STATE_DIR`): who is using it, the
bootstrap admin secret it remembers, and `make reset` (`python -m infra.state_dir reset`).

A running stack holds an exclusive `flock` on `stack.lock` inside the dir; the
kernel drops it when the process ends, however it ends (`kill -9` included),
so a lock never outlives its stack and needs no clean-up.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chalicelib.auth.service import SECRET_PREFIX

DEFAULT_STATE_DIR = ".tickwork"
LOCK_NAME = "stack.lock"
ADMIN_TOKEN_NAME = "admin-token"
#: Files only a stack writes: a dir holding none of them is not reset (a typo in
#: TICKWORK_STATE_DIR must not delete somebody's folder).
STACK_FILES = (LOCK_NAME, ADMIN_TOKEN_NAME, "dynamodb.json", "journal")


class StateDirInUse(Exception):
    """Another live process holds the state dir's lock."""


class StateDirLock:
    """The exclusive lock of a state dir, held while the object lives (or until `release`)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / LOCK_NAME
        handle: IO[str] = open(path, "a+")  # noqa: SIM115 -- held for the stack's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            handle.close()
            holder = f"a running stack (pid {pid})" if pid else "a running stack"
            raise StateDirInUse(f"{state_dir}/ is in use by {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        self._handle.close()  # closing drops the flock


@dataclass(frozen=True)
class BootstrapSecret:
    secret: str
    #: The bootstrap secret this start replaced (to revoke), if any.
    replaced: str | None


def bootstrap_secret(state_dir: Path, from_env: str | None) -> BootstrapSecret:
    """The one bootstrap admin secret of a state dir (docs/decisions.md, "The
    bootstrap admin token"): the dir remembers the last one in `admin-token`; a
    start without TICKWORK_ADMIN_TOKEN reuses it (or generates it on the first
    run); a start with a different TICKWORK_ADMIN_TOKEN replaces it, and the
    caller revokes the replaced one."""
    path = state_dir / ADMIN_TOKEN_NAME
    kept = path.read_text().strip() if path.exists() else None
    if from_env is None and kept:
        return BootstrapSecret(kept, replaced=None)
    secret = from_env or SECRET_PREFIX + secrets.token_urlsafe(32)
    if secret != kept:
        _write_secret(path, secret)
    return BootstrapSecret(secret, replaced=kept if kept and kept != secret else None)


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.replace(temporary, path)  # a crash leaves the old secret or the new, never half


def reset(state_dir: Path) -> str:
    """Delete the state dir unless a stack is using it; returns what to print.
    Raises StateDirInUse, or ValueError for a dir that is not a stack's."""
    if not state_dir.exists():
        return f"Nothing to reset: {state_dir}/ does not exist"
    if not any((state_dir / name).exists() for name in STACK_FILES):
        raise ValueError(f"{state_dir}/ holds no Tickwork state: not deleting it")
    if Path.cwd().resolve().is_relative_to(state_dir.resolve()):
        raise ValueError(f"{state_dir}/ contains the current directory: not deleting it")
    lock = StateDirLock(state_dir)
    try:
        shutil.rmtree(state_dir)
    finally:
        lock.release()
    return f"Reset: deleted {state_dir}/ (tasks, jobs, tokens and the admin token)"


def main(argv: list[str]) -> int:
    if argv != ["reset"]:
        print("usage: python -m infra.state_dir reset", file=sys.stderr)
        return 2
    state_dir = Path(os.environ.get("TICKWORK_STATE_DIR", DEFAULT_STATE_DIR))
    try:
        print(reset(state_dir))
    except StateDirInUse as in_use:
        print(f"{in_use}: stop it (Ctrl-C) first", file=sys.stderr)
        return 1
    except ValueError as refused:
        print(refused, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
