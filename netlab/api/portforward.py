"""The pieces of ``pods/portforward`` both ends share, pure.

The ``ports`` query (repeated or comma-separated, each 1-65535), the two-byte
little-endian port prefix that starts each WebSocket channel, the WebSocket
subprotocols, kubectl's SPDY stream headers, and the error a failed connection
reports on its error stream (upstream's wording: the kubelet's "error
forwarding port", which kubectl prints after "an error occurred forwarding").
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

WS_PROTOCOL = "v4.channel.k8s.io"
# The SPDY subprotocol (X-Stream-Protocol-Version) and its WebSocket tunnel (kubectl 1.31+).
SPDY_PROTOCOL = "portforward.k8s.io"
SPDY_UPGRADE = "SPDY/3.1"
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"

# kubectl's stream headers (k8s.io/api/core/v1: PortHeader, StreamType, PortForwardRequestIDHeader)
STREAM_TYPE, PORT, REQUEST_ID = "streamtype", "port", "requestid"
STREAM_DATA, STREAM_ERROR = "data", "error"


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f'unable to parse "{text}" as a port: invalid syntax') from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} must be > 0 and < 65536")
    return port


def parse_ports(values: Iterable[str]) -> list[int]:
    """The ports of a ``ports`` query; at least one."""
    ports = [parse_port(p.strip()) for v in values for p in v.split(",") if p.strip()]
    if not ports:
        raise ValueError("at least 1 port must be specified")
    return ports


def port_prefix(port: int) -> bytes:
    return struct.pack("<H", port)


def forward_error(port: int, pod: str, uid: str, host: str, reason: str) -> str:
    return f"error forwarding port {port} to pod {pod}, uid {uid}: failed to connect to " \
           f"{host}:{port}: {reason}"
