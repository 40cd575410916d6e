"""Host-local IPAM for one node's pod /24, the way CNI's ``host-local`` plugin keeps it.

Every allocated address is a file, ``/var/lib/netlab/<lab>/ipam/<node>/<ip>``,
holding the owning pod's uid. The file *is* the allocation:

- it is created with ``O_CREAT | O_EXCL``, so two allocators (two kubelet
  threads, or a kubelet and its own restarted self) can never hand out the
  same address, even without the lock;
- it lives on disk, so a kubelet restart finds every address still in use and
  never hands one out twice;
- allocating again for a uid that already holds an address returns that
  address: that is how a restarted kubelet re-running a sandbox keeps its IP.

Allocation rotates from ``last_reserved_ip`` (as host-local does), so a just
released address is not reused at once and stale connections to it die out.
The range is the /24 less its network address, the gateway (``cni0``, the
first host) and broadcast. A ``lock`` file (flock) serialises allocators so the
"same uid, same address" rule holds under concurrency too.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Callable

from netlab.paths import DATA_ROOT

LAST_RESERVED = "last_reserved_ip"
LOCK = "lock"
_RESERVED_NAMES = {LAST_RESERVED, LOCK}


def ipam_dir(lab: str, node: str) -> Path:
    """The node's host-local data dir (CNI's ``/var/lib/cni/networks/<name>``)."""
    return DATA_ROOT / lab / "ipam" / node


@functools.lru_cache(maxsize=64)
def _pool(subnet: IPv4Network, gateway: IPv4Address | None) -> tuple[IPv4Address, ...]:
    """The subnet's hosts less the gateway: the same for every allocation of a node."""
    return tuple(ip for ip in subnet.hosts() if ip != gateway)


def _read_owner(path: str) -> str | None:
    """The owner recorded in an address file; "" while it is being written (created,
    not yet filled); None when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.read(fd, 4096).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    # host-local writes "<container id>\n<ifname>"; the first line is the owner.
    return text.split("\n", 1)[0].strip()


class IpamError(RuntimeError):
    pass


class RangeExhausted(IpamError):
    pass


class HostLocalIpam:
    """The address book of one node's pod subnet."""

    def __init__(self, directory: Path, subnet: IPv4Network | None = None,
                 gateway: IPv4Address | None = None):
        """``subnet`` is needed to allocate, not to look up or release."""
        self.directory = Path(directory)
        self.subnet = subnet
        if gateway is None and subnet is not None:
            gateway = subnet.network_address + 1
        self.gateway = gateway

    @classmethod
    def for_node(cls, lab: str, node: str, subnet: IPv4Network | None = None) -> HostLocalIpam:
        return cls(ipam_dir(lab, node), subnet)


    # -- reading -------------------------------------------------------------

    def candidates(self) -> list[IPv4Address]:
        """Every address pods may get, in order."""
        if self.subnet is None:
            raise IpamError(f"no subnet given for {self.directory}")
        return list(_pool(self.subnet, self.gateway))

    def _records(self) -> Iterator[tuple[str, str]]:
        """(address as named, owning uid) of every record. A pod start reads them all
        (the lookup before an allocation) and the policy agents poll them, so this is
        plain ``os`` calls: no ``Path`` and no address parsing per file."""
        try:
            entries = os.scandir(self.directory)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                name = entry.name
                if name in _RESERVED_NAMES or name.startswith(".") or not name[:1].isdigit():
                    continue
                uid = _read_owner(entry.path)
                if uid is not None:
                    yield name, uid

    def allocations(self) -> dict[IPv4Address, str]:
        """Address -> owning uid, from the files."""
        found: dict[IPv4Address, str] = {}
        for name, uid in self._records():
            try:
                found[IPv4Address(name)] = uid
            except ValueError:
                continue
        return found

    def lookup(self, uid: str) -> IPv4Address | None:
        """The address ``uid`` holds, if any."""
        held = []
        for name, owner in self._records():
            if owner == uid:
                with contextlib.suppress(ValueError):
                    held.append(IPv4Address(name))
        return min(held) if held else None

    def _owner(self, ip: IPv4Address) -> str | None:
        return _read_owner(os.path.join(self.directory, str(ip)))

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def allocate(self, uid: str, ifname: str = "eth0") -> IPv4Address:
        """The address for ``uid``: the one it already holds, else a free one.

        Raises ``RangeExhausted`` when every address of the node is in use.
        """
        if not uid or "\n" in uid:
            raise IpamError(f"invalid owner {uid!r}")
        with self._locked():
            held = self.lookup(uid)
            if held is not None:
                return held
            pool = self.candidates()
            start = self._start_index(pool)
            for step in range(len(pool)):
                ip = pool[(start + step) % len(pool)]
                if self._claim(ip, uid, ifname):
                    self._write_last(ip)
                    return ip
        raise RangeExhausted(f"no free pod address left in {self.subnet} "
                             f"({len(pool)} addresses, all in use)")

    def _start_index(self, pool: list[IPv4Address]) -> int:
        try:
            last = IPv4Address((self.directory / LAST_RESERVED).read_text().strip())
        except (OSError, ValueError):
            return 0
        return pool.index(last) + 1 if last in pool else 0

    def _claim(self, ip: IPv4Address, uid: str, ifname: str) -> bool:
        path = self.directory / str(ip)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False  # in use: never handed out twice
        try:
            # Not synced, as host-local does not: a kubelet that restarts finds the
            # file in the page cache, and a host that crashes has no pods left to
            # address. The fsync was 1-3 ms of every pod start here.
            os.write(fd, f"{uid}\n{ifname}".encode())
        except BaseException:
            os.close(fd)
            path.unlink()
            raise
        os.close(fd)
        return True

    def _write_last(self, ip: IPv4Address) -> None:
        # In place, as host-local writes it (under the lock): a torn read only
        # restarts the rotation (``_start_index``), and a new file per allocation
        # cost an inode's allocation on the disk each time.
        (self.directory / LAST_RESERVED).write_text(str(ip))

    def release(self, uid: str) -> list[IPv4Address]:
        """Free every address ``uid`` holds; idempotent. Returns what was freed."""
        freed = []
        with self._locked():
            for ip, owner in self.allocations().items():
                if owner == uid:
                    with contextlib.suppress(FileNotFoundError):
                        (self.directory / str(ip)).unlink()
                    freed.append(ip)
        return sorted(freed)

    def release_unknown(self, is_live: Callable[[str], bool]) -> list[IPv4Address]:
        """Garbage-collect addresses whose owner ``is_live`` denies (a pod whose
        record is gone). Checked under the lock, so an allocation racing with
        this never loses its address: sandboxes are recorded before allocating."""
        freed = []
        with self._locked():
            for ip, owner in self.allocations().items():
                if not is_live(owner):
                    with contextlib.suppress(FileNotFoundError):
                        (self.directory / str(ip)).unlink()
                    freed.append(ip)
        return sorted(freed)
