"""What the host must offer before a lab can come up, and the plugin's leftover sweep.

``missing_feature()`` returns one sentence naming the first thing that is
missing (root, ``ip``, ``nft``, network namespaces), or None. The plugin
turns it into a skip, or a failure under ``--netlab-require``.

``sweep()`` removes labs that an earlier, killed run of the plugin left
behind, and nothing else: a lab qualifies only when its name starts with the
plugin's prefix (``PREFIX``) *and* the process recorded as its creator (pid
and start time, in the lab's state) is gone. Labs of the project's own test
suite (prefix ``nlt``), of users, and of live pytest runs are never touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PREFIX = "nlp"  # every lab the plugin makes is named nlp<7 hex digits>


def missing_feature() -> str | None:
    if os.geteuid() != 0:
        return ("netlab labs need root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network "
                "namespaces); run pytest with sudo")
    for binary, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(binary) is None:
            return f"netlab labs need the '{binary}' command (install {package})"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespace support (/proc/self/ns/net is missing)"
    return None


def is_plugin_lab(name: str) -> bool:
    rest = name[len(PREFIX):]
    return name.startswith(PREFIX) and len(rest) == 7 and all(c in "0123456789abcdef"
                                                              for c in rest)


def _orphaned(lab: str) -> bool:
    from netlab.kernel.processes import is_running
    from netlab.lab.state import load_state

    state = load_state(lab)
    if state is None:
        return True
    pid, started = state.creator.get("pid"), state.creator.get("createTime")
    if pid == os.getpid():
        return False  # this very run made it; its own fixtures remove it
    return not (pid and is_running(pid, started))


def sweep() -> list[str]:
    """Bring down the plugin's labs whose creating process is dead; return their names."""
    from netlab.lab.state import list_labs, load_state

    candidates = [lab for lab in list_labs() if is_plugin_lab(lab) and _orphaned(lab)]
    stray = []
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for name in names:
        lab = name.split("-", 1)[0]
        if is_plugin_lab(lab) and lab not in candidates and load_state(lab) is None:
            stray.append(lab)
    if not candidates and not stray:
        return []
    from netlab.lab import lifecycle

    swept = candidates + sorted(set(stray))
    for lab in swept:
        # down() works from the record, or from the namespaces' owner tag without one.
        lifecycle.down(lab)
    return swept
