"""The layering of docs/architecture.md, enforced on the source with ``ast``.

- Kernel side effects live in ``netlab/kernel``: no other module imports
  pyroute2, or calls setns/unshare/mount itself (``os.setns``,
  ``os.unshare``, or through a libc handle).
- No upward imports: ``topology`` and ``api`` are pure (nothing from kernel,
  node, master, lab, cli); ``units`` imports nothing of netlab; ``master``
  never imports ``node``; ``kernel`` imports no component.
- Pictures (``netlab.graph``) sit between ``lab`` and ``cli``: only the CLI imports
  them, and apart from ``netlab.graph.source`` (which reads a lab's record and API)
  they are pure: no kernel, node, master, lab, client or trace.
- No import cycles between modules. Every import counts, function-level ones
  too (only ``if TYPE_CHECKING:`` blocks are skipped): importing inside a
  function is netlab's deliberate pattern for start-up cost (commands, the
  container shim), not a licence for two modules to depend on each other. An
  edge goes to the module named (``from a.b import c`` is an edge to ``a.b.c``
  when that is a module, else to ``a.b``); a package's ``__init__`` is not
  implied.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "netlab"
NAMESPACE_CALLS = {"setns", "unshare", "mount", "umount", "umount2"}
COMPONENTS = ("netlab.node", "netlab.master", "netlab.lab", "netlab.cli", "netlab.trace",
              "netlab.client", "netlab.images")
PURE_FORBIDDEN = ("netlab.kernel", "netlab.node", "netlab.master", "netlab.lab", "netlab.cli")
GRAPH_READER = "netlab.graph.source"
GRAPH_FORBIDDEN = (*PURE_FORBIDDEN, "netlab.client", "netlab.trace")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[str]:
    """Every module ``module`` imports (netlab's resolved to a module that exists)."""
    tree = ast.parse(MODULES[module].read_text())
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import):
                found.extend(alias.name for alias in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                target = _resolve(module, stmt)
                for alias in stmt.names:
                    sub = f"{target}.{alias.name}"
                    found.append(sub if sub in MODULES else target)
            elif isinstance(stmt, ast.If) and _is_type_checking(stmt):
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    visit([s for s in inner if isinstance(s, ast.stmt)]
                          + [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(tree.body)
    return found


def _under(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_only_kernel_touches_netlink_and_namespaces():
    offenders = []
    for module, path in MODULES.items():
        if _under(module, "netlab.kernel"):
            continue
        for name in _imports(module):
            if _under(name, "pyroute2"):
                offenders.append(f"{module} imports {name}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in NAMESPACE_CALLS \
                    and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id in ("os", "libc", "_libc"):
                offenders.append(f"{module} calls {node.func.value.id}.{node.func.attr}")
    assert offenders == [], "\n".join(offenders)


def test_no_upward_imports():
    offenders = []
    for module in MODULES:
        for name in _imports(module):
            if not _under(name, "netlab"):
                continue
            if _under(module, ("netlab.topology", "netlab.api")) and _under(name, PURE_FORBIDDEN):
                offenders.append(f"{module} (pure) imports {name}")
            if _under(module, "netlab.units"):
                offenders.append(f"{module} (the lowest layer) imports {name}")
            if _under(module, "netlab.master") and _under(name, "netlab.node"):
                offenders.append(f"{module} (master) imports {name}")
            if _under(module, "netlab.kernel") and _under(name, COMPONENTS):
                offenders.append(f"{module} (kernel) imports {name}")
            if _under(name, "netlab.graph") and not _under(module, ("netlab.graph",
                                                                     "netlab.cli")):
                offenders.append(f"{module} imports {name} (pictures are for the CLI)")
            if (_under(module, "netlab.graph") and module != GRAPH_READER
                    and _under(name, GRAPH_FORBIDDEN)):
                offenders.append(f"{module} (pure pictures) imports {name}")
    assert offenders == [], "\n".join(offenders)


def _cycles() -> list[set[str]]:
    graph = {m: {n for n in _imports(m) if n in MODULES and n != m}
             for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def test_no_import_cycles():
    cycles = [sorted(c) for c in _cycles()]
    assert cycles == []
