"""Defaulting of batch/v1 CronJob (``SetDefaults_CronJob``), registered in
:mod:`netlab.api.defaults`' table. A PodDisruptionBudget has no defaults in policy/v1."""

from __future__ import annotations

from typing import Any

from netlab.api.defaults_pod import _dict, default_pod_template


def default_cronjob(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("jobTemplate")
    job_spec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(job_spec, dict):
        # The embedded pod template is defaulted as every pod template is.
        default_pod_template(job_spec.get("template"))
