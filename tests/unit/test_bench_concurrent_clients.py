"""The figures bench.concurrent_clients reports: error kinds and job accounts."""

from __future__ import annotations

import httpx

from bench.concurrent_clients import error_kind, job_accounts


def test_an_error_kind_names_the_exception_and_the_os_error_under_it() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    error = httpx.ReadError(str(reset))
    error.__cause__ = reset  # as httpx raises it: `raise ... from` the socket's error
    assert error_kind(error) == "ReadError: ECONNRESET Connection reset by peer"


def test_an_error_kind_without_an_os_error_is_its_message_cut_short() -> None:
    assert error_kind(httpx.RemoteProtocolError("Server disconnected")) == (
        "RemoteProtocolError: Server disconnected"
    )
    assert len(error_kind(httpx.ReadTimeout("x" * 500))) == 70


def test_job_accounts_count_lost_and_unacknowledged_jobs() -> None:
    accounts = job_accounts({"a", "b", "c"}, {"b", "c", "d"})
    assert accounts == {"accepted": 3, "complete": 3, "lost": 1, "unacknowledged": 1}
