"""The proxy's nftables layout before DNAT maps (issue 16): one chain per endpoint.

The same-run baseline of ``bench/proxy_sync.py`` and ``bench/proxy_latency.py``:
every endpoint has its own chain, reached through a verdict map ``dispatch-…``, and
hairpin is a rule per local endpoint. This module *is* ``netlab/node/proxy/ruleset.py``
as of commit df0aff3, read from the repository's history when imported, so the old
layout stays runnable without a second copy of it in the tree. It needs a clone with
that commit (not a shallow one). Not used by netlab itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

BEFORE = "df0aff3"
_SOURCE = "netlab/node/proxy/ruleset.py"
_REPO = Path(__file__).resolve().parent.parent

try:
    _old = subprocess.run(["git", "-C", str(_REPO), "show", f"{BEFORE}:{_SOURCE}"],
                          check=True, capture_output=True, text=True).stdout
except (OSError, subprocess.CalledProcessError) as err:
    raise SystemExit(f"the baseline layout is {_SOURCE} at {BEFORE}, read with git: "
                     f"run the bench from a full clone ({err})") from None
exec(compile(_old, f"{BEFORE}:{_SOURCE}", "exec"), globals())
