"""The official Python client with CronJobs, PodDisruptionBudgets and evictions."""

from __future__ import annotations

from typing import Any

import pytest
import test_apiserver_pyclient as base

pyclient_core = base.core  # the same server and client set-up, as a fixture of this module


def test_cronjob_pdb_and_eviction_through_the_python_client(pyclient_core: Any) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    v1, _ = pyclient_core
    api = v1.api_client
    batch, policy = client.BatchV1Api(api), client.PolicyV1Api(api)
    container = client.V1Container(name="c", image="busybox")
    batch.create_namespaced_cron_job("default", client.V1CronJob(
        metadata=client.V1ObjectMeta(name="py"), spec=client.V1CronJobSpec(
            schedule="@hourly", job_template=client.V1JobTemplateSpec(spec=client.V1JobSpec(
                template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                    restart_policy="Never", containers=[container])))))))
    cj = batch.read_namespaced_cron_job("py", "default")
    assert (cj.spec.concurrency_policy, cj.spec.successful_jobs_history_limit) == ("Allow", 3)

    policy.create_namespaced_pod_disruption_budget("default", client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="py"), spec=client.V1PodDisruptionBudgetSpec(
            min_available=1, selector=client.V1LabelSelector(match_labels={"app": "py"}))))
    assert policy.read_namespaced_pod_disruption_budget("py", "default").status \
        .disruptions_allowed == 0

    v1.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
        spec=client.V1PodSpec(node_name="n1", containers=[container])))
    pod = v1.read_namespaced_pod("py", "default")
    pod.status = client.V1PodStatus(phase="Running", conditions=[
        client.V1PodCondition(type="Ready", status="True")])
    v1.replace_namespaced_pod_status("py", "default", pod)
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="py", namespace="default"))
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod_eviction("py", "default", eviction)
    assert err.value.status == 429
    policy.delete_namespaced_pod_disruption_budget("py", "default")
    v1.create_namespaced_pod_eviction("py", "default", eviction)
    assert v1.read_namespaced_pod("py", "default").metadata.deletion_timestamp is not None
