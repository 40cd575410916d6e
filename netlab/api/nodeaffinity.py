"""Node selector terms, as both a pod's required node affinity and a PersistentVolume's
``nodeAffinity`` use them (``v1.NodeSelectorTerm``; upstream's
component-helpers/scheduling/corev1/nodeaffinity).

A term matches a node when every ``matchExpressions`` requirement holds for the node's
labels and every ``matchFields`` requirement for its fields (only ``metadata.name``
exists); an empty term matches nothing. Operators: In, NotIn, Exists, DoesNotExist, and
Gt/Lt comparing a label's integer value. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional


def expression_matches(expr: Mapping[str, Any], value: Optional[str]) -> bool:
    """One requirement against a node's value for its key (None: the node has none)."""
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def term_matches(term: Mapping[str, Any], node_name: str,
                 node_labels: Mapping[str, str]) -> bool:
    """Whether a node (its name and labels) matches one node selector term."""
    expressions = [e for e in term.get("matchExpressions") or [] if isinstance(e, dict)]
    fields = [e for e in term.get("matchFields") or [] if isinstance(e, dict)]
    if not expressions and not fields:
        return False  # an empty term matches no objects
    return all(expression_matches(e, node_labels.get(str(e.get("key")))) for e in expressions) \
        and all(expression_matches(e, node_name if e.get("key") == "metadata.name" else None)
                for e in fields)
