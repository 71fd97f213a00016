"""What a user does with `make run`: the README tour, restarts, errors over HTTP."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import ROOT, LocalStack

TASKS = "/v1/scheduled-tasks"


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## A five-minute tour", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", tour, flags=re.S)
    start, script = str(blocks[0]), str(blocks[1])
    assert "TICKWORK_ADMIN_TOKEN=tw_demo-admin make run" in start
    return script


def test_readme_tour_works_verbatim(make_stack: Callable[..., LocalStack], tmp_path: Path) -> None:
    stack = make_stack(admin_secret="tw_demo-admin")
    script = tour_script().replace("http://127.0.0.1:8000", stack.url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert '"name":"morning-report"' in out
    assert '"upcoming":[' in out
    assert '"schedule":"*/30 * * * * *"' in out
    assert '"location":"body.schedule"' in out
    assert '{"status":"complete","result":{"order":42},"error":null}' in out
    assert '"status":"awaiting_approval"' in out
    assert '"status":"approved"' in out
    assert '{"status":"complete","result":{"deploy":"v2"},"error":null}' in out
    assert out.rstrip().endswith("204")


def test_tasks_and_tokens_survive_a_restart(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    state = tmp_path / "kept"
    first = make_stack(state_dir=state)
    with first.client() as admin:
        member = admin.post("/v1/admin/tokens", json={"project_id": "default", "name": "m"}).json()
        revoked = admin.post("/v1/admin/tokens", json={"project_id": "default", "name": "r"}).json()
        assert admin.delete(f"/v1/admin/tokens/{revoked['id']}").status_code == 204
    with first.client(member["token"]) as client:
        task = client.post(
            TASKS, json={"name": "kept", "schedule": "@yearly", "action": "echo"}
        ).json()
    assert first.stop() == 0
    assert "Data kept in" in "".join(first.output)

    second = make_stack(state_dir=state)
    # A clean stop saved a snapshot from moto itself: nothing is left to replay.
    assert re.search(r"Restored \d+ items and 0 journaled writes", "".join(second.output))
    with second.client(member["token"]) as client:
        got = client.get(f"{TASKS}/{task['id']}")
        assert got.status_code == 200
        assert got.json()["name"] == "kept"
        assert got.json()["next_run_at"] == task["next_run_at"]
        # The name is still claimed after the restart.
        assert (
            client.post(
                TASKS, json={"name": "kept", "schedule": "@daily", "action": "echo"}
            ).status_code
            == 409
        )
    with second.client(revoked["token"]) as client:
        assert client.get(TASKS).status_code == 401
    with second.client() as admin:
        ids = [t["id"] for t in admin.get("/v1/admin/tokens").json()["tokens"]]
        assert member["id"] in ids and revoked["id"] not in ids


def test_a_generated_admin_token_is_printed_and_kept(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    state = tmp_path / "generated"
    first = make_stack(state_dir=state, admin_secret=None)
    printed = re.search(r"Admin token \(project default\): (\S+)", "".join(first.output))
    assert printed
    secret = printed.group(1)
    first.stop()
    second = make_stack(state_dir=state, admin_secret=None)
    assert secret in "".join(second.output)
    with second.client(secret) as admin:
        assert admin.get("/v1/admin/tokens").status_code == 200


def test_the_task_cycle_and_its_errors_over_http(stack: LocalStack) -> None:
    with stack.client() as admin:
        acme = admin.post("/v1/admin/tokens", json={"project_id": "acme", "name": "a"}).json()
        globex = admin.post("/v1/admin/tokens", json={"project_id": "globex", "name": "g"}).json()
    with stack.client(acme["token"]) as client, stack.client(globex["token"]) as outsider:
        created = client.post(
            TASKS,
            json={"name": "a", "schedule": "*/2 * * * * *", "action": "echo", "args": {"n": 1}},
        )
        assert created.status_code == 201
        task = created.json()
        path = f"{TASKS}/{task['id']}"

        read = client.get(path).json()
        # The next firing not started leads `upcoming`; on a loaded machine the one
        # the create answer named may have started before this read (same format,
        # so the strings order as the instants do).
        assert read["upcoming"][0] == read["next_run_at"] >= task["next_run_at"]
        assert client.get(TASKS).json()["scheduled_tasks"][0]["id"] == task["id"]
        patched = client.patch(path, json={"args": {"m": 2}}, headers={"If-Match": '"1"'})
        assert patched.json()["args"] == {"n": 1, "m": 2}

        def problem(response: object, status: int) -> dict[str, object]:
            assert response.status_code == status, response.text  # type: ignore[attr-defined]
            ctype = response.headers["content-type"]  # type: ignore[attr-defined]
            assert ctype == "application/problem+json"
            body: dict[str, object] = response.json()  # type: ignore[attr-defined]
            return body

        problem(client.patch(path, json={"args": {}}, headers={"If-Match": '"1"'}), 412)
        problem(client.post(TASKS, json={"name": "a", "schedule": "@daily", "action": "echo"}), 409)
        invalid = problem(
            client.post(TASKS, json={"name": "b", "schedule": "0 0 31 2 *", "action": "echo"}), 422
        )
        assert invalid["errors"][0]["location"] == "body.schedule"  # type: ignore[index]
        problem(
            client.post(TASKS, content=b"{oops", headers={"Content-Type": "application/json"}), 400
        )
        problem(
            client.post(
                TASKS,
                json={
                    "name": "big",
                    "schedule": "@daily",
                    "action": "echo",
                    "args": {"x": "y" * 70_000},
                },
            ),
            413,
        )
        problem(client.get("/v1/admin/tokens"), 403)
        problem(outsider.get(path), 404)
        problem(outsider.delete(path), 404)
        problem(stack.client(None).get(TASKS), 401)

        assert client.delete(path).status_code == 204
        problem(client.get(path), 404)

    schema_url = json.loads(stack.client(None).get(TASKS).text)["$schema"]
    assert stack.client(None).get(schema_url).json()["title"] == "ErrorModel"
    spec = stack.client(None).get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"


def test_a_port_taken_before_the_stack_binds_it_is_replaced(tmp_path: Path) -> None:
    with socket.socket() as taken:  # what another test worker may do meanwhile
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = LocalStack(tmp_path / "state", port)
        stack.start()
        try:
            assert stack.port != port
            with stack.client() as admin:
                assert admin.get("/v1/me").status_code == 200
        finally:
            assert stack.stop() == 0


def test_a_stop_while_the_tick_runs_prints_no_traceback(
    make_stack: Callable[..., LocalStack], tmp_path: Path
) -> None:
    # Ctrl-C right after the start: the first tick's shard passes are under way.
    stack = make_stack(state_dir=tmp_path / "ticking")
    ready = len(stack.output)
    assert stack.stop() == 0
    after = "".join(list(stack.output)[ready:])
    assert "Traceback" not in after and "ERROR" not in after, after
