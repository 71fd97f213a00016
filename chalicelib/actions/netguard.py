"""The SSRF guard of `http_request`: which addresses a job may make Tickwork call.

A job's URL comes from a user, but the request leaves from inside the
operator's network (a Lambda in a VPC, the instance metadata service at
169.254.169.254, a database on 10.x). So a host is resolved first, and every
address it resolves to must be public; the connection is then made to the
address that was checked, not to a second DNS answer (no rebinding between
check and use). Operators open networks on purpose with
`TICKWORK_HTTP_ALLOW_NETWORKS`; the local stack opens loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.actions.base import ActionFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: `socket.getaddrinfo`'s shape; tests pass their own.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class AddressRefused(ActionFailed):
    """The URL's host is, or resolves to, an address the guard does not allow."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client), if any.

    `::ffff:127.0.0.1` reaches 127.0.0.1, so it is judged as 127.0.0.1.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address ("loopback", "private", ...), or None."""
    inner = embedded_ipv4(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # ::ffff:0:0/96 counts as reserved itself, but a mapped address *is* its IPv4 one.
        return refusal_reason(ip.ipv4_mapped)
    if inner is not None:
        reason = refusal_reason(inner)
        if reason is not None:
            return reason
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        # What is left and still not global: shared (CGNAT) space and the like.
        ("not global", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus the networks the operator allowed."""

    allowed: tuple[IPNetwork, ...] = ()
    #: How host names are resolved (tests give their own DNS).
    resolver: Resolver = field(default=socket.getaddrinfo, compare=False)

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs))

    def is_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
        return any(candidate in network for candidate in candidates for network in self.allowed)

    def check(self, ip: IPAddress) -> None:
        """Raises AddressRefused unless `ip` may be called."""
        reason = refusal_reason(ip)
        if reason is not None and not self.is_allowed(ip):
            raise AddressRefused(
                f"refused to call {ip}: {reason} address (the operator can allow it "
                "with TICKWORK_HTTP_ALLOW_NETWORKS)"
            )

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for `host`: every address it resolves to
        must pass `check` (one bad record refuses the host), and the first is used."""
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ActionFailed(f"cannot resolve {host!r}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise ActionFailed(f"cannot resolve {host!r}: no address")
        for address in addresses:
            self.check(address)
        return str(addresses[0])
