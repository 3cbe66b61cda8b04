"""Per-source client address allowlists in CIDR notation, IPv4 and IPv6."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from hookline.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkAllowlist:
    """The client networks a source accepts requests from.

    An empty allowlist allows every client. A non-empty one allows only
    addresses inside one of its networks. An IPv4-mapped IPv6 address
    (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 clients) is
    matched as the IPv4 address it carries. A client that is not an IP
    address at all, such as a Unix socket peer, is never allowed.

    Args:
        networks: CIDR strings such as `192.0.2.0/24` or `2001:db8::/32`.

    Raises:
        ConfigError: when an entry is not a network in CIDR notation.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = []
        for entry in networks:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip()))
            except ValueError as error:
                raise ConfigError(
                    f"allowed_networks entry {entry!r} is invalid ({error}); "
                    "use CIDR notation such as 192.0.2.0/24 or 2001:db8::/32"
                ) from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, address: str) -> bool:
        """Return True when ADDRESS may send requests to the source."""
        if not self.networks:
            return True
        try:
            client = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
            client = client.ipv4_mapped
        return any(client in network for network in self.networks)
