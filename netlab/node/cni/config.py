"""The pod network's configuration and results, in CNI's shapes (spec 1.0).

``NetConf`` is one node's network: what a CNI network configuration list
(``/etc/cni/net.d/10-netlab.conflist``) with a ``bridge`` plugin and
``host-local`` IPAM says. ``to_conflist``/``from_conflist`` give and read that
JSON, so a reader who knows CNI sees the familiar file. ``RuntimeConf`` is what
CNI passes in the environment (``CNI_CONTAINERID``, ``CNI_NETNS``,
``CNI_IFNAME``); ``Result`` is the ADD result (interfaces, ips, routes).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

CNI_VERSION = "1.0.0"
DEFAULT_BRIDGE = "cni0"
DEFAULT_IFNAME = "eth0"


class CniError(RuntimeError):
    """A CNI error: ``code`` as in the spec (4 invalid config, 7 invalid env,
    11 try again later, 100+ plugin-specific)."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self) -> dict[str, Any]:
        return {"cniVersion": CNI_VERSION, "code": self.code, "msg": self.msg,
                "details": self.details}


@dataclass(frozen=True)
class NetConf:
    """One node's pod network: the bridge plugin's and host-local's settings."""

    name: str
    subnet: IPv4Network
    data_dir: Path
    gateway: IPv4Address | None = None  # default: the subnet's first host
    bridge: str = DEFAULT_BRIDGE
    mtu: int | None = None  # default: the bridge's MTU
    hairpin_mode: bool = True
    is_gateway: bool = True  # the gateway address lives on the bridge

    @property
    def gateway_ip(self) -> IPv4Address:
        return self.gateway if self.gateway is not None else self.subnet.network_address + 1

    def to_conflist(self) -> dict[str, Any]:
        bridge: dict[str, Any] = {
            "type": "bridge", "bridge": self.bridge, "isGateway": self.is_gateway,
            "hairpinMode": self.hairpin_mode,
            "ipam": {"type": "host-local", "dataDir": str(self.data_dir),
                     "ranges": [[{"subnet": str(self.subnet),
                                  "gateway": str(self.gateway_ip)}]],
                     "routes": [{"dst": "0.0.0.0/0"}]},
        }
        if self.mtu is not None:
            bridge["mtu"] = self.mtu
        return {"cniVersion": CNI_VERSION, "name": self.name, "plugins": [bridge]}

    @classmethod
    def from_conflist(cls, data: dict[str, Any]) -> NetConf:
        """From a network configuration list, or a single plugin configuration
        (what a plugin reads on stdin: the list's ``name`` plus one plugin)."""
        try:
            plugins = data.get("plugins", [data])
            bridge = next(p for p in plugins if p.get("type") == "bridge")
            ipam = bridge["ipam"]
            if ipam.get("type") != "host-local":
                raise CniError(4, f"unsupported ipam type {ipam.get('type')!r}")
            rng = ipam["ranges"][0][0]
            return cls(name=data["name"], subnet=IPv4Network(rng["subnet"]),
                       gateway=IPv4Address(rng["gateway"]) if rng.get("gateway") else None,
                       data_dir=Path(ipam["dataDir"]), bridge=bridge.get("bridge", DEFAULT_BRIDGE),
                       mtu=bridge.get("mtu"), hairpin_mode=bool(bridge.get("hairpinMode", False)),
                       is_gateway=bool(bridge.get("isGateway", False)))
        except CniError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, StopIteration) as exc:
            raise CniError(4, f"invalid network configuration: {exc!r}") from exc


@dataclass(frozen=True)
class RuntimeConf:
    """CNI_CONTAINERID, CNI_NETNS (a name under /run/netns or a path), CNI_IFNAME."""

    container_id: str
    netns: str
    ifname: str = DEFAULT_IFNAME

    @classmethod
    def from_env(cls, env: dict[str, str]) -> RuntimeConf:
        missing = [k for k in ("CNI_CONTAINERID", "CNI_IFNAME") if not env.get(k)]
        if missing:
            raise CniError(7, f"missing {', '.join(missing)}")
        return cls(env["CNI_CONTAINERID"], env.get("CNI_NETNS", ""), env["CNI_IFNAME"])


@dataclass
class Interface:
    name: str
    mac: str
    sandbox: str = ""  # the netns path, for interfaces inside the container


@dataclass
class Result:
    """A CNI ADD result; ``to_json`` is the spec 1.0 JSON."""

    interfaces: list[Interface] = field(default_factory=list)
    ips: list[tuple[IPv4Interface, IPv4Address, int]] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (dst, gw)

    @property
    def host_veth(self) -> str:
        return next(i.name for i in self.interfaces if not i.sandbox and i.name.startswith("veth"))

    @property
    def address(self) -> IPv4Interface:
        return self.ips[0][0]

    @property
    def gateway(self) -> IPv4Address:
        return self.ips[0][1]

    def to_json(self) -> dict[str, Any]:
        return {
            "cniVersion": CNI_VERSION,
            "interfaces": [{"name": i.name, "mac": i.mac, **({"sandbox": i.sandbox}
                                                             if i.sandbox else {})}
                           for i in self.interfaces],
            "ips": [{"address": str(a), "gateway": str(g), "interface": n} for a, g, n in self.ips],
            "routes": [{"dst": d, "gw": g} for d, g in self.routes],
            "dns": {},
        }
