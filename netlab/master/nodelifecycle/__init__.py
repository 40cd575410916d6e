"""The node lifecycle controller: silent nodes become Unknown, are tainted, lose their pods.

It belongs to the controller manager process (``NodeLifecycleController``
in ``controller``); ``python -m netlab.master.nodelifecycle`` runs it on its
own. ``health`` holds its rules as pure functions.
"""

from __future__ import annotations

__all__ = ["NodeLifecycleController"]


def __getattr__(name: str):  # lazy: ``health`` alone needs no aiohttp
    if name == "NodeLifecycleController":
        from netlab.master.nodelifecycle.controller import NodeLifecycleController

        return NodeLifecycleController
    raise AttributeError(name)
