"""The real kubectl against the API server for CronJobs and PodDisruptionBudgets: client-side
validation from OpenAPI, apply, get/describe/explain, ``create job --from=cronjob``."""

from __future__ import annotations

import json

import test_apiserver_kubectl as base

# The same kubectl and TLS server set-up as the main kubectl tests (a fixture of its own).
pytestmark = base.pytestmark
kubectl_cluster = base.cluster

MANIFEST = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "30 2 * * *"
  timeZone: Europe/Paris
  jobTemplate:
    metadata:
      labels: {app: nightly}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: run
            image: busybox
            args: [date]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: web}
"""


def test_apply_get_describe_and_create_job_from_cronjob(kubectl_cluster):
    _, kubectl, tmp = kubectl_cluster
    path = tmp / "batch.yaml"
    path.write_text(MANIFEST)
    out = kubectl.out("apply", "-f", str(path))
    assert out.split("\n")[:2] == ["cronjob.batch/nightly created",
                                   "poddisruptionbudget.policy/web created"]
    # (kubectl always re-sends a PDB's selector: its patch strategy is "replace", as upstream.)
    assert kubectl.out("apply", "-f", str(path)).split("\n")[0] == \
        "cronjob.batch/nightly unchanged"
    resources = kubectl.out("api-resources")
    assert any(line.split()[:2] == ["cronjobs", "cj"] for line in resources.splitlines())
    assert any(line.split()[:2] == ["poddisruptionbudgets", "pdb"]
               for line in resources.splitlines())
    lines = kubectl.out("get", "cj").splitlines()
    assert lines[1].split()[:8] == ["nightly", "30", "2", "*", "*", "*", "Europe/Paris",
                                     "False"]
    assert "cronjob.batch/nightly" in kubectl.out("get", "all")
    described = kubectl.out("describe", "cronjob", "nightly")
    assert "Schedule:" in described and "30 2 * * *" in described
    assert "Concurrency Policy:" in described and "Allow" in described
    lines = kubectl.out("get", "pdb").splitlines()
    assert lines[1].split()[:4] == ["web", "N/A", "1", "0"]
    assert "Max unavailable:" in kubectl.out("describe", "pdb", "web")
    assert "schedule" in kubectl.out("explain", "cronjob.spec")

    out = kubectl.out("create", "job", "now", "--from=cronjob/nightly")
    assert out.strip() == "job.batch/now created"
    job = json.loads(kubectl.out("get", "job", "now", "-o", "json"))
    assert job["metadata"]["ownerReferences"][0]["name"] == "nightly"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["date"]

    # The imperative generators.
    out = kubectl.out("create", "cronjob", "tick", "--image", "busybox", "--schedule",
                      "*/1 * * * *", "--", "sleep", "1")
    assert out.strip() == "cronjob.batch/tick created"
    out = kubectl.out("create", "pdb", "echo", "--selector", "app=echo", "--min-available", "5")
    assert out.strip() == "poddisruptionbudget.policy/echo created"

    # kubectl's own client-side validation knows the fields, strictly.
    path.write_text(MANIFEST.replace("timeZone: Europe/Paris", "timezone: Europe/Paris"))
    err = kubectl.run("apply", "-f", str(path), check=False)
    assert err.returncode != 0 and 'unknown field "spec.timezone"' in err.stderr
