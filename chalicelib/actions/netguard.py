"""The SSRF guard of `http_request`: which addresses a job may make Tickwork call.

A job's URL comes from a user, but the request leaves from inside the
operator's network (a Lambda in a VPC, the instance metadata service at
169.254.169.254, a database on 10.x). So a host is resolved first, and every
address it resolves to must be public; the connection is then made to the
address that was checked, not to a second DNS answer (no rebinding between
check and use). Operators open networks on purpose with
`TICKWORK_HTTP_ALLOW_NETWORKS`, and single destinations such as a service on
this machine with `TICKWORK_HTTP_ALLOW` (`host:port` entries); the local stack
opens its own API port.

Whatever is allowed, no action calls the embedded AWS (the local stack's
moto): its DynamoDB holds every project's jobs and tokens, so a job that could
POST to it could read them or mint itself an admin token. Its port is refused
on every loopback address, for operator-configured destinations (Matrix,
webhooks, an LLM endpoint) too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chalicelib.actions.base import ActionFailed
from chalicelib.settings import Settings

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


def _on_this_machine(ip: IPAddress) -> bool:
    """Whether a connection to `ip` stays on this machine (0.0.0.0 reaches it too)."""
    inner = embedded_ipv4(ip) or ip
    return inner.is_loopback or inner.is_unspecified


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus the networks and `host:port` destinations the
    operator allowed, never the embedded AWS's port."""

    allowed: tuple[IPNetwork, ...] = ()
    #: Single destinations opened although not public: (host name or IP, port).
    endpoints: tuple[tuple[str, int], ...] = ()
    #: Ports on this machine that nothing may call, whatever is allowed (the
    #: embedded AWS's): (its host, its port).
    refused: tuple[tuple[str, int], ...] = ()
    #: False for destinations the operator configured (Matrix, webhooks, an LLM
    #: endpoint): only `refused` applies to them.
    public_only: bool = True
    #: How host names are resolved (tests give their own DNS).
    resolver: Resolver = field(default=socket.getaddrinfo, compare=False)

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs))

    @classmethod
    def for_jobs(cls, settings: Settings) -> AddressPolicy:
        """What a job's own URL may reach (`http_request`)."""
        return cls(
            allowed=tuple(
                ipaddress.ip_network(cidr, strict=False) for cidr in settings.http_allow_networks
            ),
            endpoints=settings.http_allow,
            refused=_embedded_aws(settings),
        )

    @classmethod
    def for_operator(cls, settings: Settings) -> AddressPolicy:
        """What the operator's own destinations may reach: anything but the embedded AWS."""
        return cls(refused=_embedded_aws(settings), public_only=False)

    def is_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
        return any(candidate in network for candidate in candidates for network in self.allowed)

    def check(self, ip: IPAddress, port: int | None = None, host: str = "") -> None:
        """Raises AddressRefused unless `ip` (at `port`, named `host` in the URL)
        may be called."""
        if port is not None and self._refused(ip, port):
            raise AddressRefused(
                f"refused to call {ip}:{port}: the embedded AWS's port, which no action may call"
            )
        if not self.public_only:
            return
        reason = refusal_reason(ip)
        if reason is None or self.is_allowed(ip):
            return
        if port is not None and self._listed(ip, port, host):
            return
        raise AddressRefused(
            f"refused to call {ip}: {reason} address (the operator can allow it with "
            "TICKWORK_HTTP_ALLOW_NETWORKS, or one host:port with TICKWORK_HTTP_ALLOW)"
        )

    def _refused(self, ip: IPAddress, port: int) -> bool:
        for host, refused_port in self.refused:
            if port == refused_port and (_on_this_machine(ip) or str(ip) == host):
                return True
        return False

    def _listed(self, ip: IPAddress, port: int, host: str) -> bool:
        for name, listed_port in self.endpoints:
            if listed_port != port:
                continue
            if name == host.lower() or name == str(ip):
                return True
            if ip in self._addresses(name, port):
                return True
        return False

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]

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
            self.check(address, port, host)
        return str(addresses[0])


def _embedded_aws(settings: Settings) -> tuple[tuple[str, int], ...]:
    """The embedded AWS's (host, port), from its endpoint URL; none in AWS."""
    if not settings.aws_endpoint_url:
        return ()
    parts = urlsplit(settings.aws_endpoint_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (((parts.hostname or "").lower(), port),)
