"""NetworkPolicy for netlab: policies, pods and namespaces become one nftables table per node.

``model`` holds upstream's semantics (which pods a policy isolates, which peers
and ports its rules allow) and answers single questions (``decide``);
``ruleset`` renders one node's compiled rules as nftables text; ``agent`` keeps
a node's table converged (one atomic transaction per change, a full resync
after any failure); ``python -m netlab.node.netpol`` is the per-node process
that feeds it from the API.

A pod's first packets: the pod network (``netlab.node.cni``) gives a pod its
address before its containers start, and the agent may not have seen that
pod yet. So, once the cluster has any NetworkPolicy, every address of the
node's pod subnet that the agent has not compiled is dropped in both
directions (fail closed); the agent learns a local pod's address from the
node's IPAM records (``ipam.py``'s one file per address, naming the pod uid,
written at CNI ADD) as well as from the pod's status, and compiles the pod at
once. A pod that a policy selects is therefore isolated from its first
packet, and an unselected one is open as soon as the agent has caught up
(typically before its containers run). A cluster without policies is never
touched by this.
"""
