"""What a server-side Table is made of: column definitions and a kind's printer.

:mod:`netlab.api.tables` holds each kind's printer and builds the Tables; the
``tables_*`` modules that print further groups build on these definitions.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Column:
    """One TableColumnDefinition; ``priority`` 1 columns show only with ``-o wide``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class Printer:
    """A kind's columns, in Kubernetes' order, and the function computing a row's cells."""

    columns: tuple[Column, ...]
    cells: Callable[[dict[str, Any], datetime], list[Any]]
    # Row conditions; only pods have them (Completed, for finished pods).
    conditions: Optional[Callable[[dict[str, Any]], list[Any]]] = None


# Columns nearly every kind has.
_NAME = Column("Name", format="name", description="Name of the object, unique within its "
               "namespace (or the cluster, for cluster-scoped kinds).")
_AGE = Column("Age", description="Time since the object was created (metadata.creationTimestamp).")
