"""A stop that arrives while a container's PID 1 is still starting.

The kernel drops a signal sent from outside to a PID namespace's init while the
signal's disposition is the default. Built-in images are Python programs whose
handler comes after interpreter start-up and imports, so the runtime starts them
with SIGTERM blocked: the stop stays pending and the image's launcher ends the
program as soon as it runs. Host programs keep the behaviour they would have as PID 1
in any container runtime: no handler, no effect, SIGKILL after the grace period.

Start-up is made slow on purpose with a ``sitecustomize`` that sleeps, so the stop
lands before any image code runs, every time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rtkit import as_kubelet

from netlab.images import resolve, runs_builtin
from netlab.node.runtime import ContainerSpec

pytestmark = pytest.mark.kernel

SLOW_START_SECONDS = 1.5


@pytest.fixture
def slow_site(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(
        f"import time\ntime.sleep({SLOW_START_SECONDS})  # a start-up under load\n")
    tmp_path.chmod(0o755)
    return {"PYTHONPATH": f"{tmp_path}:{Path(__file__).parents[3]}"}


def _start_then_stop(rlab, pods, name: str, spec: ContainerSpec, grace: float):
    rt = rlab.runtime("worker1")
    sb = pods.sandbox("worker1", name)
    as_kubelet(rt, lambda: rt.start_container(sb, spec, 0))
    started = time.monotonic()
    done = as_kubelet(rt, lambda: rt.stop_container(sb, "c", grace_seconds=grace))
    return done, time.monotonic() - started


@pytest.mark.parametrize("image", ["netlab/echo", "netlab/stress", "agnhost"])
def test_a_builtin_image_stopped_while_starting_exits_at_once(rlab, pods, slow_site, image):
    argv = resolve(image, None, ["--memory", "1Mi"] if image == "netlab/stress" else None)
    assert runs_builtin(argv)
    spec = ContainerSpec("c", command=tuple(argv), env=slow_site, stop_signals_blocked=True)
    done, took = _start_then_stop(rlab, pods, f"early-{image.split('/')[-1]}", spec, grace=30)
    # The stop was taken as soon as the interpreter was up, not after the 30 s grace.
    assert (done.state, done.exit_code, done.reason) == ("exited", 0, "Completed")
    assert took < 15, f"the stop waited {took:.1f}s"


def test_without_blocking_the_same_stop_is_lost_as_for_any_pid_1(rlab, pods, slow_site):
    # The behaviour the launcher exists to avoid, and what a host program that never
    # handles SIGTERM gets as PID 1 in Kubernetes too: the grace period, then SIGKILL.
    spec = ContainerSpec("c", command=tuple(resolve("netlab/echo")), env=slow_site)
    done, took = _start_then_stop(rlab, pods, "lost-stop", spec, grace=3)
    assert (done.exit_code, done.signal) == (137, 9)
    assert took >= 3


def test_a_host_program_as_pid_1_keeps_its_own_signal_handling(rlab, pods):
    spec = ContainerSpec("c", command=("sleep", "600"))
    assert not runs_builtin(list(spec.argv))
    done, _ = _start_then_stop(rlab, pods, "host-sleep", spec, grace=1)
    assert (done.exit_code, done.signal) == (137, 9)  # sleep has no handler: SIGTERM ignored
