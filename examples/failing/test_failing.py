"""A deliberately failing test, to show what the plugin adds to a failure's report:
the lab's recent events, the logs of pods that are not Running and Ready, and the
tail of every component's log. Not collected by a plain ``pytest`` (setup.cfg's
norecursedirs); ``tests/lab/test_testing_plugin.py`` runs it on purpose:

    sudo .venv/bin/python -m pytest examples/failing -p netlab.testing
"""

from __future__ import annotations

import pytest

CRASHING = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crasher"},
    "spec": {"restartPolicy": "Never", "containers": [{
        "name": "crasher", "image": "busybox",
        "command": ["sh", "-c", "echo crasher is giving up; exit 3"]}]},
}


@pytest.mark.netlab("../cluster.yaml")
def test_a_pod_that_exits_is_not_running(lab):
    lab.apply(CRASHING)
    lab.wait("pod", "crasher", lambda pod: pod["status"].get("phase") in ("Failed", "Succeeded"),
             timeout=60)
    assert lab.get("pod", "crasher")["status"]["phase"] == "Running"  # it is not: this fails
