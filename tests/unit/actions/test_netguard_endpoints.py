"""The SSRF guard's single destinations (TICKWORK_HTTP_ALLOW) and the one port
no action may call: the embedded AWS's."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.actions.netguard import AddressPolicy, AddressRefused
from chalicelib.settings import Settings, host_ports

MOTO = "http://127.0.0.1:4566"


def _dns(**names: str) -> Any:
    def resolve(host: str, port: int, type: int = 0) -> list[tuple[Any, ...]]:
        address = names.get(host, host)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.0.0.2", "0.0.0.0", "::1", "::ffff:127.0.0.1"]
)
def test_the_embedded_aws_port_is_refused_whatever_is_allowed(address: str) -> None:
    settings = Settings(
        aws_endpoint_url=MOTO,
        http_allow_networks=("127.0.0.0/8", "::/0", "0.0.0.0/8"),
        http_allow=(("127.0.0.1", 4566), ("localhost", 4566)),
    )
    for policy in (AddressPolicy.for_jobs(settings), AddressPolicy.for_operator(settings)):
        with pytest.raises(AddressRefused, match="embedded AWS"):
            policy.check(ip(address), 4566, "localhost")
        policy.check(ip(address), 4567, "localhost")  # another port of this machine


def test_a_name_resolving_to_this_machine_is_refused_at_the_embedded_port() -> None:
    policy = replace(
        AddressPolicy.for_operator(Settings(aws_endpoint_url=MOTO)),
        resolver=_dns(**{"chat.internal": "127.0.0.1"}),
    )
    with pytest.raises(AddressRefused, match="embedded AWS"):
        policy.resolve("chat.internal", 4566)
    assert policy.resolve("chat.internal", 8008) == "127.0.0.1"


def test_loopback_opens_only_to_listed_host_ports() -> None:
    settings = Settings(aws_endpoint_url=MOTO, http_allow=host_ports("localhost:8000,[::1]:9000"))
    policy = replace(AddressPolicy.for_jobs(settings), resolver=_dns(localhost="127.0.0.1"))
    assert policy.resolve("localhost", 8000) == "127.0.0.1"
    assert policy.resolve("127.0.0.1", 8000) == "127.0.0.1"  # the name resolves to it
    assert policy.resolve("::1", 9000) == "::1"
    for host, port in (("127.0.0.1", 8001), ("::1", 8000), ("10.0.0.1", 8000)):
        with pytest.raises(AddressRefused, match="TICKWORK_HTTP_ALLOW"):
            policy.resolve(host, port)


def test_without_an_embedded_aws_nothing_extra_is_refused() -> None:
    policy = AddressPolicy.for_operator(Settings())
    policy.check(ip("127.0.0.1"), 4566)
    with pytest.raises(AddressRefused):
        AddressPolicy.for_jobs(Settings()).check(ip("127.0.0.1"), 4566)


def test_allow_entries_come_from_the_environment_and_typos_stop_the_start() -> None:
    env = {"TICKWORK_HTTP_ALLOW": "127.0.0.1:8000, LocalHost:9000,[::1]:80"}
    assert Settings.from_env(env).http_allow == (
        ("127.0.0.1", 8000),
        ("localhost", 9000),
        ("::1", 80),
    )
    assert Settings.from_env({}).http_allow == ()
    for bad in ("127.0.0.1", "localhost:http", ":8000", "host:0", "host:70000"):
        with pytest.raises(ValueError, match="TICKWORK_HTTP_ALLOW"):
            Settings.from_env({"TICKWORK_HTTP_ALLOW": bad})
