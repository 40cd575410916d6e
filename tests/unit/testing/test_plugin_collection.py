"""The pytest plugin's promises that need no lab: collection errors that name the
problem, one skip reason on a host that cannot run labs, ``--netlab-require``.

Each case is a small user project in ``tmp_path`` run by pytest in a subprocess,
exactly as a user runs it; no lab is brought up by any of them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netlab.testing.host import PREFIX, is_plugin_lab
from netlab.testing.lab import condition_check

GOOD = "name: demo\nnodes:\n  - {name: cp, role: control-plane}\n  - {name: w1}\n"
NO_HOST = textwrap.dedent("""\
    import netlab.testing

    netlab.testing.missing_feature = lambda: "this host has no network namespaces (test)"
    """)


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-rs", *args, str(directory)], capture_output=True, text=True,
                          cwd=directory, timeout=120, check=False)


def project(tmp_path: Path, test: str, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "test_user.py").write_text(textwrap.dedent(test))
    return tmp_path


def test_a_missing_topology_is_a_collection_error_naming_it(tmp_path):
    project(tmp_path, """\
        import pytest

        @pytest.mark.netlab("nowhere/topo.yaml")
        def test_x(lab):
            pass
        """)
    out = run_pytest(tmp_path)
    assert out.returncode == 2, out.stdout
    assert "ERROR collecting test_user.py" in out.stdout
    assert "the netlab topology 'nowhere/topo.yaml' does not exist" in out.stdout
    assert str(tmp_path / "nowhere" / "topo.yaml") in out.stdout


def test_an_invalid_topology_is_a_collection_error_with_the_validation_message(tmp_path):
    project(tmp_path, """\
        import pytest

        pytestmark = pytest.mark.netlab("bad.yaml", scope="module")

        def test_x(lab):
            pass
        """, {"bad.yaml": "name: demo\nnodes:\n  - {name: cp, role: boss}\n"})
    out = run_pytest(tmp_path)
    assert out.returncode == 2, out.stdout
    assert "the netlab topology does not validate" in out.stdout
    assert "bad.yaml:3: nodes[0].role" in out.stdout


def test_an_unknown_scope_is_a_collection_error(tmp_path):
    project(tmp_path, """\
        import pytest

        @pytest.mark.netlab("good.yaml", scope="galaxy")
        def test_x(lab):
            pass
        """, {"good.yaml": GOOD})
    out = run_pytest(tmp_path)
    assert out.returncode == 2, out.stdout
    assert "scope='galaxy'; use one of function, module, session" in out.stdout


def test_a_host_that_cannot_run_labs_skips_with_one_reason(tmp_path):
    project(tmp_path, """\
        import pytest

        @pytest.mark.netlab("good.yaml")
        def test_x(lab):
            raise AssertionError("never runs")

        def test_without_a_lab():
            pass
        """, {"good.yaml": GOOD, "conftest.py": NO_HOST})
    out = run_pytest(tmp_path)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 1 skipped" in out.stdout
    assert "this host has no network namespaces (test)" in out.stdout


def test_netlab_require_turns_the_skip_into_a_failure(tmp_path):
    project(tmp_path, """\
        import pytest

        @pytest.mark.netlab("good.yaml")
        def test_x(lab):
            pass
        """, {"good.yaml": GOOD, "conftest.py": NO_HOST})
    out = run_pytest(tmp_path, "--netlab-require")
    assert out.returncode == 1, out.stdout
    assert "--netlab-require: this host has no network namespaces (test)" in out.stdout


def test_the_lab_fixture_without_a_marker_says_what_is_missing(tmp_path):
    project(tmp_path, """\
        def test_x(lab):
            pass
        """, {"conftest.py": ""})
    out = run_pytest(tmp_path)
    assert out.returncode == 1, out.stdout
    assert "mark the test with @pytest.mark.netlab('topology.yaml')" in out.stdout


def test_only_the_plugins_own_names_are_its_labs():
    assert is_plugin_lab(f"{PREFIX}0123abc")
    assert not is_plugin_lab("nlt0123abc")  # the project's own suite
    assert not is_plugin_lab("demo")
    assert not is_plugin_lab(f"{PREFIX}prod")
    assert not is_plugin_lab(f"{PREFIX}0123abcd")


def _obj(kind: str, phase: str | None = None, **conditions: str) -> dict:
    status = {"conditions": [{"type": t, "status": s} for t, s in conditions.items()]}
    if phase:
        status["phase"] = phase
    return {"kind": kind, "metadata": {"generation": 2},
            "spec": {"replicas": 3}, "status": status}


@pytest.mark.parametrize(("condition", "obj", "expected"), [
    ("Ready", _obj("Pod", "Running", Ready="True"), True),
    ("Ready", _obj("Pod", "Running", Ready="False"), False),
    ("Ready=False", _obj("Node", Ready="False"), True),
    ("NotReady", _obj("Node", Ready="Unknown"), True),
    ("NotReady", _obj("Node", Ready="True"), False),
    ("Complete", _obj("Job", Complete="True"), True),
    ("Running", _obj("Pod", "Running"), True),
    ("Succeeded", _obj("Pod", "Running"), False),
    ("Available", {**_obj("Deployment", Available="True"),
                   "status": {"conditions": [{"type": "Available", "status": "True"}],
                              "availableReplicas": 3, "observedGeneration": 2}}, True),
    ("Available", {**_obj("Deployment", Available="True"),  # a stale status
                   "status": {"conditions": [{"type": "Available", "status": "True"}],
                              "availableReplicas": 3, "observedGeneration": 1}}, False),
    (lambda o: o["kind"] == "Pod", _obj("Pod"), True),
])
def test_wait_conditions(condition, obj, expected):
    assert condition_check(condition)(obj) is expected
