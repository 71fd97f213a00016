"""The runner's watcher: how often a running job's cancel request is looked for."""

from __future__ import annotations

import itertools

from chalicelib.engine.runner import CANCEL_CHECK_MAX_S, cancel_check_pauses


def test_a_long_run_looks_for_a_cancel_request_a_few_times_a_minute() -> None:
    pauses = list(itertools.islice(cancel_check_pauses(), 6))
    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert max(pauses) == CANCEL_CHECK_MAX_S  # a request is seen within it
    looks, waited = 0, 0.0
    for pause in cancel_check_pauses():  # each look is one read of the job
        waited += pause
        if waited > 900:
            break
        looks += 1
    assert looks <= 115  # a 15-minute run, not 900 reads
