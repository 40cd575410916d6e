"""``--pcap DIR``: the probe's frames, one classic pcap file per interface they crossed.

Nanosecond pcap (magic ``0xa1b23c4d``, link type Ethernet), which tcpdump,
Wireshark and scapy's ``rdpcap`` all read, so the kernel timestamps of the
capture survive intact. Written by hand (a 24-byte header and 16 bytes per
record): the format is that simple, and it keeps the file's bytes exactly
those the capture socket received.

Files are named ``<where>_<interface>.pcap``, where is the node, the pod
(``pod-<name>``) or ``network`` for the physical network's bridge ports.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netlab.trace.model import Hop

PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535


def _name(hop: Hop) -> str:
    where = "pod-" + hop.pod.split("/", 1)[-1] if hop.pod else hop.node or "network"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{where}_{hop.iface}") + ".pcap"


def write_pcaps(directory: str | Path, hops: Sequence[Hop]) -> list[dict[str, Any]]:
    """Write the hops' frames; set each hop's ``pcap`` to its file name; return
    one entry per file: file, namespace, interface, packets."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Hop]] = {}
    for hop in sorted((h for h in hops if h.frame), key=lambda h: h.ts_ns):
        files.setdefault(_name(hop), []).append(hop)
    written = []
    for name, group in files.items():
        with open(out_dir / name, "wb") as f:
            f.write(struct.pack("=IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN,
                                LINKTYPE_ETHERNET))
            for hop in group:
                data = hop.frame or b""
                sec, nsec = divmod(hop.ts_ns, 1_000_000_000)
                f.write(struct.pack("=IIII", sec, nsec, len(data), len(data)))
                f.write(data)
                hop.pcap = name
        written.append({"file": name, "netns": group[0].netns, "interface": group[0].iface,
                        "packets": len(group)})
    return written
