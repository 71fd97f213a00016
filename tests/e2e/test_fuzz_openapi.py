"""A standing fuzz test: schemathesis over the local stack's `/openapi.json`,
once with a member token and once with an admin token. Seeded and bounded in
time; any server error, or any schema-valid request refused, fails it.

`fuzz_hooks` supplies examples for what no schema states (cursors from a page,
schedules that fire, registered actions with their args).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.jobs.service import MAX_RESULT_WAIT_S
from tests.e2e.conftest import ROOT, LocalStack

SEED = 20261202
#: Seconds each of the two runs may take, and the examples per operation.
RUN_BUDGET_S = 45
MAX_EXAMPLES = 25
#: Each request's time limit: past the longest long-poll the API holds
#: (`GET /v1/queue/jobs/{id}/result?wait=20`), which schemathesis's default 10 s
#: cut short as a network error.
REQUEST_TIMEOUT_S = MAX_RESULT_WAIT_S + 10
#: `positive_data_acceptance` also expects 412: a valid `If-Match` that names
#: another version (state, not shape); 404 (ids that do not exist) and 409 are
#: schemathesis's defaults already.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "412"]
"""


def fuzz(stack: LocalStack, secret: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{stack.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {secret}",
        "--header",
        f"X-Auth-Token: {secret}",
        "--checks",
        "not_a_server_error,positive_data_acceptance",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(RUN_BUDGET_S),
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--workers",
        "1",
        "--no-color",
        "--suppress-health-check",
        "all",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_BUDGET_S * 4
    )


@pytest.mark.parametrize("role", ["member", "admin"])
def test_the_fuzzer_finds_no_server_error_and_no_valid_request_refused(
    stack: LocalStack, tmp_path: Path, role: str
) -> None:
    with stack.client() as admin:
        issued = admin.post(
            "/v1/admin/tokens", json={"project_id": "default", "role": role, "name": "fuzz"}
        )
    assert issued.status_code == 201, issued.text
    result = fuzz(stack, issued.json()["token"], tmp_path)
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
