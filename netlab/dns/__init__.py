"""Cluster DNS: CoreDNS's ``kubernetes`` plugin, restated for netlab.

``records.py`` holds the Services, EndpointSlices and Pods and answers a parsed
query (pure); ``server.py`` serves it over UDP and TCP, forwarding the names
outside the zone to an upstream or refusing them; ``metrics.py`` renders its
counters for Prometheus. ``addon.py`` builds the ``kube-system/kube-dns`` objects
(pure, and free of dnspython: the supervisor and the kubelet flags need only the
Service address). The component that feeds the records from the API server's
watches is ``__main__.py``; ``lookup.py`` is a pod's resolver, for
``netlab dns lookup``.

Nothing is imported here, so that ``netlab.dns.addon`` stays light.
"""
