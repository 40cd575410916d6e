"""netlab's kubelet: the node agent that turns Pod objects bound to a node into processes.

One kubelet runs per cluster node, started by the lab supervisor inside the
node's network namespace (``python -m netlab.node.kubelet``, see ``config``).
It talks to the API server across the physical network with the lab's token,
and drives the container runtime (``netlab.node.runtime``) as a library. The
modules, roughly bottom up:

- ``config``: the command line, and the node's plan derived from it;
- ``spec``: a Pod's container -> the runtime's ContainerSpec (env, $(VAR),
  downward API, image -> argv); pure;
- ``status``: Kubernetes' pod status (phase, conditions, containerStatuses)
  from what the runtime observes; pure;
- ``restarts``: restart policy and the CrashLoopBackOff back-off; pure;
- ``cri``: the runtime on a thread pool, and container exits as pidfd events;
- ``events``, ``statussync``: writing Events and ``pods/status``, coalesced;
- ``probes``, ``prober``: exec, tcpSocket and httpGet probes, and what their
  results do to a pod (ready, restart);
- ``pods``: one worker per pod (sandbox, containers, restarts, deletion);
- ``node``: registration, heartbeat (Lease + Ready), usage annotations;
- ``overlay``: the VXLAN peers, following the Node objects;
- ``logs``, ``server``, ``certs``, ``metrics``: the HTTPS endpoint on :10250
  (container logs, the Summary API) and the usage the node publishes;
- ``client``: how the API server reaches a kubelet (``pods/log``);
- ``kubelet``: wires it all together.

Nothing is imported here, so that ``client`` (which the API server imports)
stays light.
"""
