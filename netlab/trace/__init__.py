"""Packet tracing: one real, tagged probe followed hop by hop through a lab.

``netlab trace SRC DST`` sends a TCP SYN, UDP datagram or ICMP echo from
SRC's namespace and watches it, and its answer, cross every namespace of the
lab: capture sockets with kernel timestamps everywhere, nftables tracing in
every node. The result is one row per sighting (node, interface, observation
point, addresses, what NAT changed, the outer VXLAN headers, the kube-proxy
rule that decided) and a verdict: delivered, answered, or lost after hop N
with the likely reason.

The modules, in the order a trace uses them:

- ``resolve``: SRC/DST names to places (API-backed or records-backed);
- ``labview``: namespaces and interfaces to nodes, pods and observation points;
- ``probe``: the tagged probe, built with scapy, sent from a raw socket;
- ``capture``: AF_PACKET sockets in every namespace, SO_TIMESTAMPNS;
- ``nftrace``: ``meta nftrace`` rules per node and the netlink trace events;
- ``packets``: decoding frames (VXLAN included) without scapy;
- ``correlate``: frames and events to hops (pure);
- ``rules``: trace events to kube-proxy Service/endpoint labels (pure);
- ``verdict``: hops to delivered/answered/lost (pure but for a route lookup);
- ``pcap``: ``--pcap DIR`` files;
- ``report``: table and JSON (the JSON schema is documented there);
- ``engine``: ``run_trace``, which ties them together and cleans up.

scapy is imported by ``probe.build`` only, when a trace actually runs: no
other netlab module, and no import of this package, loads it.
"""
