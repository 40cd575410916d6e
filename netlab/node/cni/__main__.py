"""``python -m netlab.node.cni``: the plugin as CNI executes one.

``CNI_COMMAND`` (ADD, DEL, CHECK, VERSION), ``CNI_CONTAINERID``, ``CNI_NETNS``
and ``CNI_IFNAME`` in the environment, the network configuration on stdin; the
result JSON (ADD) or an error JSON on stdout, exit 1 on error. It runs in the
caller's network namespace, which is the node's (``ip netns exec <node> ...``).
"""

from __future__ import annotations

import json
import os
import sys

from netlab.node.cni import add, check, delete
from netlab.node.cni.config import CNI_VERSION, CniError, NetConf, RuntimeConf


def main() -> int:
    env = dict(os.environ)
    command = env.get("CNI_COMMAND", "")
    try:
        if command == "VERSION":
            print(json.dumps({"cniVersion": CNI_VERSION, "supportedVersions": [CNI_VERSION]}))
            return 0
        try:
            conf = NetConf.from_conflist(json.load(sys.stdin))
        except ValueError as exc:
            raise CniError(6, f"cannot decode the network configuration: {exc}") from exc
        rt = RuntimeConf.from_env(env)
        if command == "ADD":
            print(json.dumps(add(conf, rt).to_json()))
        elif command == "DEL":
            delete(conf, rt)
        elif command == "CHECK":
            problems = check(conf, rt)
            if problems:
                raise CniError(100, "; ".join(problems))
        else:
            raise CniError(4, f"unknown CNI_COMMAND {command!r}")
    except CniError as exc:
        print(json.dumps(exc.to_json()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
