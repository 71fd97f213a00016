"""The local stack's state dir: one bootstrap admin secret whatever the order of
starts, the lock a running stack holds, `make reset`, and the start's checks."""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from infra.local_stack import log_level, port_is_free
from infra.state_dir import (
    ADMIN_TOKEN_NAME,
    StateDirInUse,
    StateDirLock,
    bootstrap_secret,
    reset,
)


def test_a_plain_first_start_generates_the_secret_and_keeps_it(tmp_path: Path) -> None:
    first = bootstrap_secret(tmp_path, None)
    assert first.secret.startswith("tw_") and first.replaced is None
    kept = tmp_path / ADMIN_TOKEN_NAME
    assert kept.read_text() == first.secret + "\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert bootstrap_secret(tmp_path, None) == first


def test_a_plain_start_after_an_env_start_reuses_the_env_secret(tmp_path: Path) -> None:
    assert bootstrap_secret(tmp_path, "tw_chosen").replaced is None
    again = bootstrap_secret(tmp_path, None)
    assert again.secret == "tw_chosen" and again.replaced is None
    assert bootstrap_secret(tmp_path, "tw_chosen").replaced is None


def test_a_different_env_secret_replaces_the_kept_one(tmp_path: Path) -> None:
    generated = bootstrap_secret(tmp_path, None).secret
    changed = bootstrap_secret(tmp_path, "tw_chosen")
    assert changed.secret == "tw_chosen" and changed.replaced == generated
    assert bootstrap_secret(tmp_path, None).secret == "tw_chosen"
    assert bootstrap_secret(tmp_path, "tw_other").replaced == "tw_chosen"


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    lock = StateDirLock(tmp_path)
    with pytest.raises(StateDirInUse, match=f"pid {os.getpid()}"):
        StateDirLock(tmp_path)
    lock.release()
    StateDirLock(tmp_path).release()


def test_reset_deletes_a_state_dir_unless_a_stack_holds_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    bootstrap_secret(state, None)
    (state / "dynamodb.json").write_text("{}")
    lock = StateDirLock(state)
    with pytest.raises(StateDirInUse):
        reset(state)
    assert (state / "dynamodb.json").exists()
    lock.release()
    assert "deleted" in reset(state)
    assert not state.exists()
    assert "Nothing to reset" in reset(state)


def test_reset_refuses_a_dir_no_stack_wrote(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no Tickwork state"):
        reset(tmp_path)
    assert (tmp_path / "notes.txt").exists()


def test_log_levels() -> None:
    assert log_level("debug") == logging.DEBUG
    assert log_level(" INFO ") == logging.INFO
    with pytest.raises(ValueError, match="TICKWORK_LOG='loud'"):
        log_level("loud")


def test_a_listening_port_is_not_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
    assert port_is_free("127.0.0.1", port)
