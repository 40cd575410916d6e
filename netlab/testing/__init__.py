"""``netlab.testing``: a pytest plugin that gives a test a running lab.

Installing netlab registers it (the ``pytest11`` entry point); nothing to
configure::

    import pytest

    @pytest.mark.netlab("topology.yaml", scope="module")
    def test_pods_reach_each_other(lab):
        lab.apply("web.yaml")
        lab.wait("deployment", "web", "Available", timeout=60)
        assert lab.reach("client", "node/worker1:30080")

- ``@pytest.mark.netlab(PATH, scope=...)``: the topology, relative to the test
  file (or to pytest's rootdir, or absolute), and how long its lab lives:
  ``"function"`` (default), ``"module"`` or ``"session"``. On a module or a
  class (``pytestmark``) it covers every test there. A missing file or a
  topology that does not validate is a collection error with the message
  ``netlab validate`` prints.
- the ``lab`` fixture: a ``netlab.testing.lab.TestLab`` for the marker's
  topology, brought up under a unique name (``nlp`` + 7 hex digits) and always
  brought down in a ``finally``. See ``TestLab`` for the helpers.
- a failing test's report gets sections with the lab's recent events, the
  logs of pods that are not healthy, and the tail of each component's log.
- hosts that cannot run labs (not root, no ``ip``/``nft``, no network
  namespaces) skip with one reason; ``--netlab-require`` fails instead (CI).
- at session start, labs an earlier run of the plugin left behind (killed
  before its ``finally`` ran) are brought down: only labs named with the
  plugin's prefix whose recorded creating process is dead.
- the host's root network namespace is checked around every test using a
  lab and around every lab's life; a change fails the test
  (``netlab_check_root_namespace = false`` in the ini file turns it off).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from netlab.testing.host import PREFIX, missing_feature, sweep
from netlab.testing.lab import LabTimeout, TestLab

if TYPE_CHECKING:
    from pluggy import Result  # what a hookwrapper's yield returns

__all__ = ["PREFIX", "LabTimeout", "TestLab"]

SCOPES = ("function", "module", "session")
LABS_KEY = pytest.StashKey[list]()


class MarkerError(Exception):
    """A ``netlab`` marker that cannot be used (bad path, bad topology, bad scope)."""


@dataclass(frozen=True)
class LabRequest:
    topology: Path
    scope: str
    control_plane: bool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netlab")
    group.addoption("--netlab-require", action="store_true", default=False,
                    help="fail, instead of skipping, tests that need a lab when this host "
                         "cannot run one (not root, no ip/nft, no network namespaces)")
    parser.addini("netlab_check_root_namespace", type="bool", default=True,
                  help="fail a test whose lab changed the host's root network namespace")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netlab(topology, scope='function', control_plane=True): run the test "
        "with a lab made from TOPOLOGY (relative to the test file), as the 'lab' fixture")
    config.stash[_SWEPT] = []


_SWEPT = pytest.StashKey[list]()


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or missing_feature() is not None:
        return  # an xdist worker: the controller sweeps; or a host that runs no labs
    config.stash[_SWEPT] = sweep()


def pytest_report_header(config: pytest.Config) -> list[str]:
    swept = config.stash.get(_SWEPT, [])
    if swept:
        labs = f"{len(swept)} lab{'s' if len(swept) != 1 else ''}"
        return [f"netlab: removed {labs} a killed run left behind: {', '.join(swept)}"]
    return []


# --- the marker ---------------------------------------------------------------------------


_topologies: dict[Path, str | None] = {}


def _validate(path: Path) -> str | None:
    """None when the topology validates, else the validation message (cached)."""
    if path not in _topologies:
        from netlab.topology import TopologyError, load_topology

        try:
            load_topology(path)
            _topologies[path] = None
        except TopologyError as err:
            _topologies[path] = err.format()
    return _topologies[path]


def lab_request(item: pytest.Item) -> LabRequest | None:
    """The ``netlab`` marker of ``item``, resolved; ``MarkerError`` when unusable."""
    marker = item.get_closest_marker("netlab")
    if marker is None:
        return None
    if len(marker.args) != 1:
        raise MarkerError(f"{item.nodeid}: @pytest.mark.netlab takes one topology path, "
                          f"got {marker.args!r}")
    unknown = set(marker.kwargs) - {"scope", "control_plane"}
    if unknown:
        raise MarkerError(f"{item.nodeid}: @pytest.mark.netlab has no option "
                          f"{', '.join(sorted(unknown))} (options: scope, control_plane)")
    scope = marker.kwargs.get("scope", "function")
    if scope not in SCOPES:
        raise MarkerError(f"{item.nodeid}: scope={scope!r}; use one of {', '.join(SCOPES)}")
    given = Path(os.fspath(marker.args[0]))
    tried = [given] if given.is_absolute() else [Path(str(item.path)).parent / given,
                                                 Path(str(item.config.rootpath)) / given]
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        raise MarkerError(f"{item.nodeid}: the netlab topology {str(given)!r} does not exist "
                          f"(looked for {', '.join(str(p) for p in tried)})")
    found = found.resolve()
    problem = _validate(found)
    if problem is not None:
        raise MarkerError(f"{item.nodeid}: the netlab topology does not validate:\n{problem}")
    return LabRequest(found, scope, bool(marker.kwargs.get("control_plane", True)))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(
        collector: pytest.Collector) -> Generator[None, Result[pytest.CollectReport], None]:
    """A marker naming a missing or invalid topology is a collection error of its file."""
    outcome = yield
    report = outcome.get_result()
    if report.outcome != "passed" or not isinstance(collector, (pytest.Module, pytest.Class)):
        return
    problems = []
    for item in report.result:
        if isinstance(item, pytest.Item):
            try:
                lab_request(item)
            except MarkerError as err:
                problems.append(str(err))
    if problems:
        report.outcome = "failed"
        report.longrepr = "\n".join(dict.fromkeys(problems))
        report.result = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_feature()
    if reason is None or config.getoption("netlab_require"):
        return
    for item in items:
        if item.get_closest_marker("netlab") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


# --- labs ---------------------------------------------------------------------------------


def _root_snapshot(config: pytest.Config) -> Any:
    if not config.getini("netlab_check_root_namespace"):
        return None
    from netlab.kernel.snapshot import namespace_snapshot

    return namespace_snapshot()


def _check_root(config: pytest.Config, before: Any, what: str) -> None:
    if before is None:
        return
    from netlab.kernel.snapshot import namespace_snapshot

    after = namespace_snapshot()
    if after != before:
        changed = sorted(k for k in before if before[k] != after.get(k))
        pytest.fail(f"{what} changed the host's root network namespace ({', '.join(changed)})",
                    pytrace=False)


def _topology_copy(topology: Path, name: str, directory: Path) -> Path:
    """The user's topology under the lab's unique name; workload files made absolute."""
    import yaml

    data = yaml.safe_load(topology.read_text())
    data["name"] = name
    workloads = data.get("workloads")
    if isinstance(workloads, list):
        data["workloads"] = [str((topology.parent / w).resolve()) if isinstance(w, str) else w
                             for w in workloads]
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class LabPool:
    """The labs of one scope, by topology; every one brought down in ``close``."""

    def __init__(self, config: pytest.Config, workdir: Path):
        self.config = config
        self.workdir = workdir
        self.labs: dict[LabRequest, TestLab] = {}
        self.before = _root_snapshot(config)

    def get(self, request: LabRequest) -> TestLab:
        if request not in self.labs:
            self.labs[request] = self._up(request)
        return self.labs[request]

    def _up(self, request: LabRequest) -> TestLab:
        from netlab.lab import lifecycle
        from netlab.topology import load_topology, plan_lab

        name = f"{PREFIX}{uuid.uuid4().hex[:7]}"
        directory = self.workdir / name
        directory.mkdir(parents=True)
        path = _topology_copy(request.topology, name, directory)
        try:
            topology = load_topology(path)
            lifecycle.up(topology, control_plane=request.control_plane)
        except lifecycle.LabError as err:
            lifecycle.down(name)  # up rolls back itself; this is belt and braces
            pytest.fail(f"netlab could not bring up {request.topology}: {err}", pytrace=False)
        except BaseException:
            lifecycle.down(name)
            raise
        return TestLab(name, request.topology, plan_lab(topology), directory,
                       request.topology.parent, control_plane=request.control_plane)

    def close(self) -> None:
        from netlab.lab import lifecycle

        errors = []
        for lab in self.labs.values():
            try:
                lab.close()
            finally:
                try:
                    lifecycle.down(lab.name)
                except Exception as exc:  # keep bringing the others down
                    errors.append(f"{lab.name}: {exc}")
        self.labs.clear()
        if errors:
            pytest.fail("netlab down failed: " + "; ".join(errors), pytrace=False)
        _check_root(self.config, self.before, "bringing labs up and down")


def _pool(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Iterator[LabPool]:
    pool = LabPool(request.config, factory.mktemp("netlab", numbered=True))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def _netlab_session_labs(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPool]:
    yield from _pool(request, tmp_path_factory)


@pytest.fixture(scope="module")
def _netlab_module_labs(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPool]:
    yield from _pool(request, tmp_path_factory)


@pytest.fixture
def lab(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestLab]:
    """The running lab of the test's ``@pytest.mark.netlab(TOPOLOGY)``."""
    reason = missing_feature()
    if reason is not None:
        if request.config.getoption("netlab_require"):
            pytest.fail(f"--netlab-require: {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        wanted = lab_request(request.node)
    except MarkerError as err:
        pytest.fail(str(err), pytrace=False)
    if wanted is None:
        pytest.fail("the 'lab' fixture needs a topology: mark the test with "
                    "@pytest.mark.netlab('topology.yaml')", pytrace=False)
    before = _root_snapshot(request.config)
    if wanted.scope == "function":
        pool = LabPool(request.config, tmp_path_factory.mktemp("netlab", numbered=True))
    else:
        pool = request.getfixturevalue(f"_netlab_{wanted.scope}_labs")
    try:
        the_lab = pool.get(wanted)
        # A shared lab reads each test's relative manifest paths beside that test.
        the_lab.base_dir = Path(str(request.node.path)).parent
        request.node.stash.setdefault(LABS_KEY, []).append(the_lab)
        try:
            yield the_lab
        finally:
            the_lab.restore_links()  # a fault the test left behind must not leak
    finally:
        if wanted.scope == "function":
            pool.close()  # the lab lives as long as the test: down in this finally
        _check_root(request.config, before, "this test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo
                              ) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    labs = item.stash.get(LABS_KEY, [])
    if not labs:
        return
    from netlab.testing import diagnostics

    for the_lab in labs:
        if not getattr(the_lab, "control_plane", True):
            report.sections.append((f"netlab {the_lab.name}: component logs",
                                    diagnostics.component_logs_text(the_lab.name)))
            continue
        with contextlib.suppress(Exception):
            for title, text in diagnostics.sections(the_lab):
                report.sections.append((title, text))
