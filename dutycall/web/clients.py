"""Which address a request really comes from, behind trusted reverse proxies or none.

Behind a reverse proxy (nginx in front, TLS ended there) every request arrives from the
proxy's address, so per-client limits and logs would see one client. Each proxy appends the
address it received the connection from to ``X-Forwarded-For``; everything to the left of
what our own proxies appended was written by the client and proves nothing. So the header
is believed only when the connection comes from a trusted proxy, and then read from the
right: the first address that is not itself a trusted proxy is the client (never the
left-most, which the client chooses). Without ``--trusted-proxy`` the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: A longer chain than this is not walked (aiohttp already caps a header at 8 KiB).
MAX_HOPS = 32


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """Addresses or CIDR blocks ("10.0.0.1", "10.0.0.0/8", "::1"); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an address or CIDR block: {value!r}") from exc
    return networks


def _address(text: str) -> IPAddress | None:
    """An address as a proxy writes it: bare, "[v6]" or "[v6]:port", "v4:port"; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """The client address of a request, trusting ``X-Forwarded-For`` only from our proxies."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The client behind ``peer`` (the connection's address) given the X-Forwarded-For
        header values in order. An address that does not parse ends the walk at the last
        trusted hop: the clients behind it then share one address, but none can choose it."""
        client = _address(peer or "")
        if client is None or not self.is_trusted(client):
            return str(client) if client is not None else peer or ""
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops[-MAX_HOPS:]):
            address = _address(hop)
            if address is None:
                break
            client = address
            if not self.is_trusted(address):
                break
        return str(client)

    def of(self, request: web.BaseRequest) -> str:
        peer = request.remote
        if not self.trusted:  # the header is not even read
            return self.resolve(peer)
        return self.resolve(peer, request.headers.getall("X-Forwarded-For", []))


CLIENT_ADDRESSES = web.AppKey("client_addresses", ClientAddresses)
#: Used when an application has no configuration of its own (no proxy trusted).
_DIRECT = ClientAddresses()


def client_address(request: web.BaseRequest) -> str:
    """The request's client address, by its application's :class:`ClientAddresses`."""
    app = request.app if isinstance(request, web.Request) else None
    return (app.get(CLIENT_ADDRESSES, _DIRECT) if app is not None else _DIRECT).of(request)
