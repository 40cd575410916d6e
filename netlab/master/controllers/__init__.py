"""netlab's controller manager: the controllers that make workloads converge.

One process (``python -m netlab.master.controllers``, see ``__main__`` and
``manager``) runs every controller on one API client and one shared informer
per resource, each controller a module with its own work queue and
``reconcile``:

- ``replicaset``: exactly ``spec.replicas`` pods, with expectations;
- ``replication``: the same logic for core/v1 ReplicationControllers;
- ``serviceaccount``: a ``default`` ServiceAccount in every namespace;
- ``deployment`` (+ ``rollout``, its pure math): ReplicaSets per template,
  rolling updates, revisions, status and conditions;
- ``endpoints``: Service -> ready and not-ready pod addresses;
- ``job``: completions, parallelism, backoffLimit, finalizer-tracked counts;
- ``hpa`` (+ ``hpacalc``, ``metrics``): autoscaling/v2 on measured usage;
- ``gc``: cascading deletion through ownerReferences (background,
  foreground, orphan);
- ``namespace``: emptying and finalizing deleted namespaces;
- and the node lifecycle controller from ``netlab.master.nodelifecycle``.

Shared pieces: ``base`` (context, controller base class, indexes, adoption),
``expectations``, ``podutil`` and ``events``. Nothing is imported here, so
that importing a pure module (``rollout``, ``hpacalc``) stays cheap.
"""
