"""Attach Bidirectional volumes inside the shield, then exec conmon.

Run with ``FD:PATH... -- ARGV`` by the shield (``oci_runtime``): each FD is a
detached copy of a Bidirectional volume's source (``namespaces.clone_tree``, made
in the runtime's own mount namespace, a peer of the host's mount), attached over
the bundle's helper mount PATH in the shield's mount namespace, where ``unshare
--propagation slave`` turned every other mount into a slave or private one. crun's
``rshared`` bind of PATH is then a peer of the host's mount too: what the container
mounts below the volume reaches the host, and nothing else of the shield (its
overlays, the cgroup tree it hides) does.

This has to happen in a process of the shield after ``unshare``, since a mount made
before it would be made a slave with the rest; so it is a step of its own between the
shield's mounts and conmon.
"""

from __future__ import annotations

import os
import sys

from netlab.kernel import namespaces as nsutil


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: peers FD:PATH... -- ARGV", file=sys.stderr)
        return 125
    split = argv.index("--")
    pairs, command = argv[:split], argv[split + 1:]
    for pair in pairs:
        fd, _, path = pair.partition(":")
        try:
            nsutil.attach_tree(int(fd), path)
        except (OSError, ValueError) as err:
            print(f"cannot attach the Bidirectional volume at {path}: {err}", file=sys.stderr)
            return 125
        os.close(int(fd))
    os.execvp(command[0], command)
    return 125  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
