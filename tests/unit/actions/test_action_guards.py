"""Pure parts of the network actions: the SSRF guard, the PartiQL check, DynamoDB
values, transaction ids, the action settings and the configured plugin modules."""

from __future__ import annotations

import ipaddress
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.actions import registry
from chalicelib.actions.netguard import AddressPolicy, AddressRefused, refusal_reason
from chalicelib.actions.partiql import QueryRefused, Select, check_select
from chalicelib.actions.query import from_dynamo, render, to_dynamo
from chalicelib.actions.rooms import transaction_id
from chalicelib.jobs.model import Job, JobStatus, Trigger
from chalicelib.settings import Settings


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.53", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:8.8.8.8", None),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.255.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not global"),
        ("198.18.0.1", "private"),
    ],
)
def test_only_public_addresses_have_no_refusal_reason(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_allowed_networks_open_only_themselves_mapped_forms_included() -> None:
    policy = AddressPolicy.from_cidrs(["127.0.0.0/8", "10.1.0.0/16"])
    policy.check(ipaddress.ip_address("127.0.0.1"))
    policy.check(ipaddress.ip_address("::ffff:127.0.0.1"))
    policy.check(ipaddress.ip_address("10.1.2.3"))
    for refused in ("10.2.0.1", "::1", "169.254.169.254"):
        with pytest.raises(AddressRefused):
            policy.check(ipaddress.ip_address(refused))


def _resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


def test_a_host_with_one_bad_record_is_refused_and_a_good_one_pins_its_address() -> None:
    mixed = AddressPolicy(resolver=_resolver("93.184.216.34", "10.0.0.7"))
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.7: private"):
        mixed.resolve("mixed.example", 80)
    good = AddressPolicy(resolver=_resolver("93.184.216.34", "8.8.4.4"))
    assert good.resolve("good.example", 80) == "93.184.216.34"


@pytest.mark.parametrize(
    ("statement", "select"),
    [
        ('SELECT * FROM "reports"', Select("reports")),
        ("select pk, n from reports where n > ?", Select("reports")),
        ('SELECT * FROM "reports"."by-day" WHERE day = ?', Select("reports", "by-day")),
        ("SELECT * FROM \"reports\" WHERE note = 'no; DELETE here'", Select("reports")),
        ('SELECT "from", "delete" FROM "reports" ORDER BY pk DESC', Select("reports")),
        ('SELECT * FROM "we""ird"', Select('we"ird')),
    ],
)
def test_a_plain_select_on_an_allowed_table_passes(statement: str, select: Select) -> None:
    assert check_select(statement, {"reports", 'we"ird'}) == select


@pytest.mark.parametrize(
    "statement",
    [
        "",
        "UPDATE reports SET n = 1",
        "update reports set n = 1",
        "DELETE FROM reports WHERE pk = 'a'",
        "INSERT INTO reports VALUE {'pk': 'a'}",
        "SELECT * FROM reports; SELECT * FROM reports",
        "SELECT * FROM reports WHERE EXISTS (SELECT * FROM reports)",
        "SELECT * FROM reports WHERE pk IN (SELECT pk FROM reports)",
        "SELECT * FROM other",
        'SELECT * FROM "Reports"',
        "SELECT * FROM reports, other",
        "SELECT * FROM reports AS r",
        "SELECT * FROM reports /* hi */",
        "SELECT * FROM reports WHERE pk = 'unterminated",
        "SELECT * FROM",
        "SELECT 1",
        "EXEC something",
    ],
)
def test_anything_else_is_refused(statement: str) -> None:
    with pytest.raises(QueryRefused, match=r"^refused: "):
        check_select(statement, {"reports"})


def test_dynamodb_values_become_plain_json_and_back() -> None:
    plain = {"s": "x", "i": 3, "f": 2.5, "b": False, "z": None, "l": [1, "a"], "m": {"k": [True]}}
    assert from_dynamo(to_dynamo(plain)) == plain
    assert from_dynamo({"NS": ["10", "2.5"]}) == [2.5, 10]
    assert from_dynamo({"B": b"\x00\x01"}) == "AAE="
    assert from_dynamo({"N": "12345678901234567890"}) == 12345678901234567890


def test_a_room_rendering_is_short() -> None:
    rows = [{"n": n} for n in range(12)]
    text = render("reports", rows, more=True)
    assert text.splitlines()[0] == "12+ rows from reports"
    assert text.splitlines()[-1] == "... and 2 more"
    assert len(text.splitlines()) == 12


def _job(job_id: str, attempt: int) -> Job:
    at = datetime(2027, 1, 4, tzinfo=UTC)
    return Job(
        id=job_id,
        project_id="acme",
        action="send_message",
        status=JobStatus.ACTIVE,
        trigger=Trigger.CRON,
        attempt=attempt,
        scheduled_for=at,
        timestamp_ms=0,
    )


def test_a_jobs_attempts_share_one_matrix_transaction_and_jobs_do_not() -> None:
    assert transaction_id(_job("t:1", 1)) == transaction_id(_job("t:1", 3))
    assert transaction_id(_job("t:1", 1)) != transaction_id(_job("t:2", 1))


def test_action_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TICKWORK_HTTP_ALLOW_NETWORKS": "127.0.0.0/8, ::1/128",
            "TICKWORK_ROOM_WEBHOOKS": '{"ops": "https://hooks.example/T1"}',
            "TICKWORK_AI_PROVIDER": "openai",
            "TICKWORK_QUERY_TABLES": "reports,metrics",
            "TICKWORK_ACTION_MODULES": "acme.actions",
        }
    )
    assert settings.http_allow_networks == ("127.0.0.0/8", "::1/128")
    assert settings.room_webhook("ops") == "https://hooks.example/T1"
    assert settings.room_webhook("other") is None
    assert settings.ai_provider == "openai"
    assert settings.query_tables == ("reports", "metrics")
    assert settings.action_modules == ("acme.actions",)
    assert Settings.from_env({}).http_allow_networks == ()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TICKWORK_ROOM_WEBHOOKS", "{not json", "not JSON"),
        ("TICKWORK_ROOM_WEBHOOKS", '["https://x"]', "must be"),
        ("TICKWORK_AI_PROVIDER", "skynet", "must be one of bedrock, openai"),
        ("TICKWORK_HTTP_ALLOW_NETWORKS", "localhost", "TICKWORK_HTTP_ALLOW_NETWORKS"),
    ],
)
def test_bad_action_settings_stop_the_start(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})


def test_modules_in_the_configuration_add_their_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tw_plugin_ok.py").write_text(
        "from pydantic import BaseModel\n"
        "from chalicelib.actions import Action\n"
        "class Args(BaseModel):\n    pass\n"
        "ACTIONS = [Action('ping', Args, lambda ctx, args: 'pong')]\n"
    )
    (tmp_path / "tw_plugin_bad.py").write_text("ACTIONS = ['not an action']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = registry(Settings(action_modules=("tw_plugin_ok",)))
        assert found.get("ping") is sys.modules["tw_plugin_ok"].ACTIONS[0]
        assert {"http_request", "invoke_lambda"} <= set(found.names())
        assert registry(Settings()).get("ping") is None
        with pytest.raises(TypeError, match="module 'tw_plugin_bad': ACTIONS must be"):
            registry(Settings(action_modules=("tw_plugin_bad",)))
    finally:
        sys.modules.pop("tw_plugin_ok", None)
        sys.modules.pop("tw_plugin_bad", None)
