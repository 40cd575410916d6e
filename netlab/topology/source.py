"""Reading a topology file while remembering where every value came from.

Validation reports ``demo.yaml:14: nodes[2].name: ...``, so the parsed data
keeps a map from each YAML path to its line. PyYAML's composer gives nodes
with marks; this module turns them into plain Python values plus that map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import yaml

PathKey = tuple[Union[str, int], ...]


def format_path(path: PathKey) -> str:
    """``("nodes", 2, "name")`` -> ``nodes[2].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass
class Source:
    """Parsed YAML data with the line of every path (1-based)."""

    data: Any
    filename: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        # An error about a missing key points at its parent, the nearest thing
        # that exists in the file.
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


class SourceError(ValueError):
    """The file is not readable YAML; carries the line when YAML knows it."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def parse_yaml(text: str, filename: str) -> Source:
    """Parse one YAML document, keeping line numbers."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        source = Source(data=None, filename=filename)
        source.data = _build(loader, root, (), source.lines) if root is not None else None
        return source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SourceError(f"not valid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey,
           lines: dict[PathKey, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            child = (*path, str(key))
            result[key] = _build(loader, value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_manifests(text: str, filename: str) -> list[dict[str, Any]]:
    """All documents of a multi-document manifest file, skipping empty ones."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SourceError(f"not valid YAML: {exc.problem or exc}",
                          mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}") from exc
    return [doc for doc in docs if doc is not None]
