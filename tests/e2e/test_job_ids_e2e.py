"""Job ids belong to their project, on `make run` over HTTP (DESIGN §5): the same
`job_id` in two projects is two jobs, and a held user-id job is decided through
its request id in the URL (the local server's routing, not only the test client's).

The stack runs on real time: jobs are awaited with the API's own long-poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, free_port
from tests.e2e.test_queue_e2e import result, submit, token

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_job_ids_e2e")

JOBS = "/v1/queue/jobs"
HITL = "/v1/queue/hitl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("job-ids"), free_port())
    stack.start()
    yield stack
    stack.stop()


def test_one_job_id_in_two_projects_and_its_approval_over_http(stack: LocalStack) -> None:
    with (
        stack.client(token(stack, "shop")) as shop,
        stack.client(token(stack, "rival")) as rival,
    ):
        mine = submit(shop, job_id="deploy:prod.v1", args={"who": "shop"}, requires_approval=True)
        theirs = submit(rival, job_id="deploy:prod.v1", args={"who": "rival"})
        assert mine["id"] == theirs["id"] == "deploy:prod.v1"
        submit(rival, 409, job_id="deploy:prod.v1")
        assert result(rival, "deploy:prod.v1")["result"] == {"who": "rival"}

        request_id = mine["approval_request_id"]
        shown: dict[str, Any] = shop.get(f"{HITL}/{request_id}").json()
        assert (shown["id"], shown["job_id"]) == (request_id, "deploy:prod.v1")
        assert rival.post(f"{HITL}/{request_id}/approve", json={}).status_code == 404
        approved = shop.post(f"{HITL}/{request_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert result(shop, "deploy:prod.v1")["result"] == {"who": "shop"}
        assert shop.get(f"{JOBS}/deploy:prod.v1").json()["status"] == "complete"
