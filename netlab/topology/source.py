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

    def __init__(self, message: str, line: int | None = None,
                 fix: str = "fix the YAML syntax at that line"):
        super().__init__(message)
        self.line = line
        self.fix = fix


def parse_yaml(text: str, filename: str) -> Source:
    """Parse one YAML document, keeping line numbers."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        source = Source(data=None, filename=filename)
        source.data = (_build(loader, root, (), source.lines, set())
                       if root is not None else None)
        return source
    except yaml.MarkedYAMLError as exc:
        raise _source_error(exc) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _source_error(exc: yaml.MarkedYAMLError) -> SourceError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    # PyYAML splits its message in two: "expected a single document in the
    # stream" (context) + "but found another document" (problem). Both halves
    # are needed to make sense.
    text = ", ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    if "expected <block end>" in text:
        return SourceError(f"not valid YAML: the indentation is inconsistent ({text})", line,
                           "indent this line like the other lines of its block")
    return SourceError(f"not valid YAML: {text}", line)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey,
           lines: dict[PathKey, int], active: set[int]) -> Any:
    line = node.start_mark.line + 1
    lines[path] = line
    if id(node) in active:  # "&a [*a]": an alias inside its own anchor
        raise SourceError("not valid YAML: an alias refers to the value that contains it", line)
    if isinstance(node, yaml.MappingNode):
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        loader.flatten_mapping(node)
        merged = len(node.value) - own  # "<<: *anchor" pairs come first and may be overridden
        result: dict[Any, Any] = {}
        own_keys: dict[Any, int] = {}
        active.add(id(node))
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            key_line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise SourceError("not valid YAML: a mapping key must be a plain value, "
                                  "not a list or a mapping", key_line) from None
            if index >= merged:
                if key in own_keys:
                    raise SourceError(f"duplicate key '{key}' (first at line {own_keys[key]}); "
                                      "the second would silently replace the first", key_line,
                                      "keep only one of them")
                own_keys[key] = key_line
            child = (*path, str(key))
            result[key] = _build(loader, value_node, child, lines, active)
            lines[child] = key_line
        active.discard(id(node))
        return result
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        items = [_build(loader, item, (*path, i), lines, active)
                 for i, item in enumerate(node.value)]
        active.discard(id(node))
        return items
    return loader.construct_object(node, deep=True)


def load_manifests(text: str, filename: str) -> list[dict[str, Any]]:
    """All documents of a multi-document manifest file, skipping empty ones."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        raise _source_error(exc) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}") from exc
    return [doc for doc in docs if doc is not None]
