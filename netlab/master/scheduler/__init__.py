"""netlab's scheduler: places pending pods on nodes, as kube-scheduler does.

The supervisor runs it in the control-plane node's namespace
(``python -m netlab.master.scheduler``); it reaches the API server across
the lab's physical network like every other component. Modules, bottom up:

- ``nodeinfo``: a pod's requirements and a node's state, parsed once (pure);
- ``filters``: kube-scheduler's filter plugins and its FitError message (pure);
- ``scoring``: least-allocated requests blended with measured usage, ties
  spread by owner (pure);
- ``cache``: every node and what is placed on it, with assumed pods;
- ``queue``: active, backoff and unschedulable pods;
- ``events``: the event recorder (also used by the node lifecycle controller);
- ``scheduler``: the loop that ties them together.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SCHEDULER", "Scheduler"]


def __getattr__(name: str):  # lazy: the pure modules need no aiohttp
    if name in __all__:
        from netlab.master.scheduler import scheduler

        return getattr(scheduler, name)
    raise AttributeError(name)
