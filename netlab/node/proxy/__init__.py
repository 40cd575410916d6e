"""kube-proxy for netlab: Services and Endpoints become one nftables table per node.

``model`` turns API objects into service ports, ``ruleset`` renders them as
nftables text, ``syncer`` keeps a node's table converged (full and partial
syncs, garbage, conntrack), ``hostnet`` prepares the node namespace, and
``describe`` explains a listed table. The watch loop that feeds a Proxier from
the API lives with the component that runs it.
"""
