"""Hostile DaemonSet, StatefulSet and ControllerRevision bodies: defaulting and validation
answer every one without raising, and tables and the controllers' pure decisions every one
that validation admits (fixed seed)."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timezone

from netlab.api import defaults, tables, validation
from netlab.master.controllers import history
from netlab.master.controllers import statefulset_plan as sp
from netlab.master.controllers.daemonset import plan
from netlab.master.controllers.daemonset_placement import should_run

SEED = 20261206
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
TEMPLATE = {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "tolerations": [{"key": "k", "operator": "Exists"}],
                     "nodeSelector": {"a": "b"},
                     "affinity": {"nodeAffinity": {
                         "requiredDuringSchedulingIgnoredDuringExecution": {
                             "nodeSelectorTerms": [{"matchExpressions": [
                                 {"key": "z", "operator": "In", "values": ["1"]}]}]}}}}}
SEEDS = {
    "DaemonSet": {"metadata": {"name": "x", "namespace": "default", "generation": 1},
                  "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE,
                           "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                               "maxUnavailable": "50%", "maxSurge": 0}},
                           "minReadySeconds": 5},
                  "status": {"numberReady": 1}},
    "StatefulSet": {"metadata": {"name": "x", "namespace": "default", "generation": 1},
                    "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE,
                             "replicas": 3, "serviceName": "x", "ordinals": {"start": 1},
                             "updateStrategy": {"type": "RollingUpdate",
                                                "rollingUpdate": {"partition": 1}},
                             "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {
                                 "accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}]},
                    "status": {"readyReplicas": 2}},
    "ControllerRevision": {"metadata": {"name": "x-1", "namespace": "default",
                                        "ownerReferences": [{"kind": "DaemonSet", "name": "x",
                                                             "apiVersion": "apps/v1",
                                                             "uid": "u", "controller": True}]},
                           "revision": 1, "data": {"spec": {"template": TEMPLATE}}},
}
NODE = {"metadata": {"name": "n", "labels": {"a": "b", "z": "1"}},
        "spec": {"taints": [{"key": "k", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
POD = {"metadata": {"name": "x-1", "labels": {"controller-revision-hash": "h"},
                    "deletionTimestamp": None},
       "spec": {"nodeName": "n"},
       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def mutate(rng: random.Random, value: object, depth: int = 0) -> object:
    if depth > 6 or rng.random() < 0.1:
        return rng.choice([None, 0, -1, 2**70, 1.5, "", "x" * rng.randint(0, 80), True, [], {},
                           "50%", "abc%", [None], {"$patch": "replace"}])
    if isinstance(value, dict):
        return {k: mutate(rng, v, depth + 1) for k, v in value.items() if rng.random() > 0.1}
    if isinstance(value, list):
        return [mutate(rng, v, depth + 1) for v in value if rng.random() > 0.1]
    return value if rng.random() < 0.7 else mutate(rng, None, depth + 7)


def test_nothing_raises_on_mutated_objects():
    rng = random.Random(SEED)
    for _ in range(400):
        for kind, seed in SEEDS.items():
            obj = mutate(rng, copy.deepcopy(seed))
            if not isinstance(obj, dict):
                continue
            defaults.apply_defaults(kind, obj)
            valid = not validation.validate(kind, obj, True)
            validation.validate_update(kind, obj, copy.deepcopy(seed), True)
            if valid:  # only what validation admits is ever stored and printed
                tables.to_table(kind, [obj], NOW)
        ds = mutate(rng, copy.deepcopy(SEEDS["DaemonSet"]))
        node = mutate(rng, copy.deepcopy(NODE))
        pod = mutate(rng, copy.deepcopy(POD))
        if isinstance(ds, dict) and not validation.validate("DaemonSet", ds, True) \
                and isinstance(node, dict) and isinstance(pod, dict):
            should_run(ds, node)
            plan(ds, [node], [pod], "h", NOW)
        sts = mutate(rng, copy.deepcopy(SEEDS["StatefulSet"]))
        if isinstance(sts, dict) and isinstance(pod, dict):
            defaults.apply_defaults("StatefulSet", sts)
            if not validation.validate("StatefulSet", sts, True):
                sp.next_step(sts, [pod], "h")
                sp.calculate_status(sts, [pod], "h", "h", NOW, None)
                history.hash_revision_data(history.revision_data(sts))
