"""CORS for the console's origin (`TICKWORK_CONSOLE_ORIGIN`): only `/v1`
routes, only that origin. Routes take their CORS configuration when the app
is imported, so the app is imported in a child process with the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.api.mount import cors_config
from chalicelib.settings import Settings, console_origin
from infra.stack_process import ROOT

ORIGIN = "https://console.example.com"

_PROBE = """
import json
from chalice.config import Config
from chalice.local import LocalGateway
from app import app

gateway = LocalGateway(app, Config())
origin = {"Origin": "https://console.example.com"}
answers = {
    "preflight": gateway.handle_request("OPTIONS", "/v1/scheduled-tasks/x", {
        **origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization,content-type,if-match",
    }, None),
    "unauthenticated": gateway.handle_request("GET", "/v1/me", origin, None),
    "health": gateway.handle_request("GET", "/health", origin, None),
}
print(json.dumps({k: [a["statusCode"], a["headers"]] for k, a in answers.items()}))
"""


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    env = {**os.environ, "TICKWORK_CONSOLE_ORIGIN": ORIGIN + "/", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_preflight_allows_the_console_origin_and_its_headers(answers: dict[str, Any]) -> None:
    status, headers = answers["preflight"]
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert set(headers["Access-Control-Allow-Methods"].split(",")) == {
        "GET",
        "PATCH",
        "DELETE",
        "OPTIONS",
    }
    allowed = {h.lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed
    assert "Access-Control-Allow-Credentials" not in headers


def test_v1_answers_carry_the_origin_even_when_refused(answers: dict[str, Any]) -> None:
    status, headers = answers["unauthenticated"]
    assert status == 401
    assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_routes_outside_v1_have_no_cors(answers: dict[str, Any]) -> None:
    status, headers = answers["health"]
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize(
    "bad",
    ["*", "https://console.example.com/app", "console.example.com", "https://a.com,https://b"],
)
def test_the_origin_is_one_origin(bad: str) -> None:
    with pytest.raises(ValueError, match="TICKWORK_CONSOLE_ORIGIN"):
        console_origin({"TICKWORK_CONSOLE_ORIGIN": bad})


@pytest.mark.parametrize(
    "plain",
    [
        "http://console.example.com",
        "http://tickwork-dev-consolebucket-abc.s3-website-us-east-1.amazonaws.com",
        "http://10.0.0.5:8000",
        "http://[2001:db8::1]",
        "http://127.0.0.1.example.com",
    ],
)
def test_plain_http_is_refused_but_for_loopback(plain: str) -> None:
    with pytest.raises(ValueError, match=r"https://.*only for loopback") as refused:
        Settings.from_env({"TICKWORK_CONSOLE_ORIGIN": plain})
    assert plain in str(refused.value)


@pytest.mark.parametrize(
    "origin",
    [
        "https://console.example.com",
        "https://d111111abcdef8.cloudfront.net",
        "https://[2001:db8::1]:8443",
        "http://127.0.0.1:8000",
        "http://localhost:5173",
        "http://[::1]:8000",
    ],
)
def test_https_and_loopback_origins_are_taken(origin: str) -> None:
    assert Settings.from_env({"TICKWORK_CONSOLE_ORIGIN": origin + "/"}).console_origin == origin


def test_the_app_does_not_start_with_a_plain_http_origin() -> None:
    """The routes read the origin when the app is imported (`chalice deploy` too)."""
    env = {
        **os.environ,
        "TICKWORK_CONSOLE_ORIGIN": "http://console.example.com",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "TICKWORK_CONSOLE_ORIGIN must be an https:// origin" in done.stderr


def test_no_origin_no_cors() -> None:
    assert console_origin({}) is None
    assert cors_config(None) is None
