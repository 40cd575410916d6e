"""The checker of topology files: it collects every ``Problem`` (YAML path, line,
what is wrong, the fix) in one pass, and the primitives each section's checks share
(mappings with known keys, whole numbers in a range, subnets). Pure.

``validate.py`` checks the sections with it; ``racks.py`` the physical networks and
routers.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_address, ip_network
from typing import Any

from netlab.topology.source import PathKey, Source, format_path

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_FIX = "use lower-case letters, digits and '-', starting and ending with a letter or digit"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str
    fix: str

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.path}: {self.message.rstrip('.')}. Fix: {_sentence(self.fix)}"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


class TopologyError(Exception):
    """A topology file that cannot be used, with every problem found in it."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = problems
        super().__init__(self.format())

    def format(self) -> str:
        count = len(self.problems)
        head = f"{self.filename}: {count} error{'s' if count != 1 else ''} in the topology"
        return "\n".join([head, *("  " + p.format(self.filename) for p in self.problems)])


# Ranges that cannot address hosts on a link, even inside a lab's own namespaces.
_SPECIAL_RANGES = (
    (ip_network("0.0.0.0/8"), "the 'this network' range"),
    (ip_network("127.0.0.0/8"), "the loopback range"),
    (ip_network("224.0.0.0/4"), "the multicast range"),
    (ip_network("240.0.0.0/4"), "the reserved range"),
)
_SUBNET_FIX = "write it in CIDR form, e.g. 10.0.0.0/16"


def _suggest(value: Any, choices: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` when ``value`` is close to one of ``choices``, else ``""``."""
    if not isinstance(value, str):
        return ""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


@dataclass
class _Checker:
    source: Source
    problems: list[Problem] = field(default_factory=list)

    def error(self, path: PathKey, message: str, fix: str, *, at_line: bool = True) -> None:
        line = self.source.line(path) if at_line else None
        self.problems.append(Problem(format_path(path), line, message, fix))

    def mapping(self, value: Any, path: PathKey, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_kind(value)}",
                       f"write {format_path(path)} as 'key: value' pairs ({', '.join(allowed)})")
            return {}
        for key in value:
            if key in allowed:
                continue
            hint = _suggest(str(key), allowed)
            if hint:
                close = hint.split("'")[1]
                self.error((*path, str(key)), f"unknown key '{key}'{hint}",
                           f"rename it to '{close}'")
            else:
                self.error((*path, str(key)), f"unknown key '{key}'",
                           f"remove it; the keys allowed here are {', '.join(allowed)}")
        return value

    def integer(self, value: Any, path: PathKey, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {value!r}",
                       f"use a number from {low} to {high}")
            return None
        if not low <= value <= high:
            self.error(path, f"{value} is out of range", f"use a number from {low} to {high}")
            return None
        return value

    def subnet(self, value: Any, path: PathKey) -> IPv4Network | None:
        if not isinstance(value, str):
            self.error(path, f"expected a subnet such as 10.0.0.0/16, got {value!r}", _SUBNET_FIX)
            return None
        text = value.strip()
        try:
            net = ip_network(text, strict=False)
        except ValueError:
            self.error(path, f"'{value}' is not an IPv4 subnet", _SUBNET_FIX)
            return None
        if net.version != 4:
            self.error(path, f"'{value}' is an IPv6 subnet; netlab labs are IPv4 only",
                       _SUBNET_FIX)
            return None
        if "/" not in text:
            self.error(path, f"'{value}' has no prefix length",
                       f"add one, e.g. {net.network_address}/24")
            return None
        if net.network_address != ip_address(text.split("/")[0]):
            self.error(path, f"'{value}' has host bits set", f"use the network address: {net}")
            return None
        for special, what in _SPECIAL_RANGES:
            if net.overlaps(special):
                self.error(path, f"{net} overlaps {what} {special}",
                           "use a private range inside 10.0.0.0/8, 172.16.0.0/12 or "
                           "192.168.0.0/16")
                return None
        return net


_KINDS: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), repr(value))
