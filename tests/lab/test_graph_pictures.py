"""The pictures of a running lab, opened in a real browser: ``netlab graph -o html``
and ``netlab trace -o html``, checked through headless Chromium's rendered DOM.

The cluster lab runs a Deployment behind a Service. Chromium (Debian's) opens each
page from a file:// URL, inside a network namespace of its own with nothing in it
(``unshare --net``: not the host's, not the lab's), with its background traffic
off, so the page's self-containment is tested too: anything it tried to fetch
would fail. The page's own script marks every picture element the browser laid
out with ``data-drawn="yes"``; the test reads that from ``--dump-dom``, and saves
``--screenshot`` PNGs under the test's tmp dir (paths printed; ``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from labkit import netlab_cli, wait_for

from netlab.graph.output import render
from netlab.graph.scene import element_id
from netlab.graph.tracepic import trace_scene

REPLICAS = 4
MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pic-web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: pic-web}}
  template:
    metadata: {labels: {app: pic-web}}
    spec:
      containers:
        - name: echo
          image: netlab/echo
          ports: [{containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
          resources: {requests: {cpu: 100m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: pic-web}
spec:
  selector: {app: pic-web}
  ports: [{name: http, port: 80, targetPort: 8080}]
""".replace("REPLICAS", str(REPLICAS))

# Chromium without any traffic of its own: no background services, no component or
# safe-browsing updates, no name resolution; and it runs in an empty netns anyway.
QUIET = ["--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--disable-breakpad", "--no-pings",
         "--metrics-recording-only", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--hide-scrollbars", "--window-size=1600,1200"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; scripts/setup.sh installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium): the pictures' "
                    "pages cannot be checked in a browser")
    return path


def _browse(page: Path, profile: Path, *mode: str) -> str:
    """Open ``page`` in headless Chromium in a fresh, empty network namespace."""
    argv = ["unshare", "--net", "--", _chromium(), *QUIET, f"--user-data-dir={profile}",
            *(["--no-sandbox"] if os.geteuid() == 0 else []), *mode, page.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Elements(HTMLParser):
    """Every element with an id in a serialized DOM: id -> its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if found.get("id"):
            self.by_id[str(found["id"])] = found


def _rendered(dom: str) -> _Elements:
    parsed = _Elements()
    parsed.feed(dom)
    assert int(parsed.body.get("data-drawn-count") or 0) > 0, "the page's script did not run"
    return parsed


def _assert_drawn(parsed: _Elements, ids: list[str]) -> None:
    missing = [i for i in ids if i not in parsed.by_id]
    undrawn = [i for i in ids if i in parsed.by_id and parsed.by_id[i].get("data-drawn") != "yes"]
    assert missing == [] and undrawn == [], f"missing {missing}, not laid out {undrawn}"


def _screenshot(page: Path, profile: Path) -> Path:
    shot = page.with_suffix(".png")
    _browse(page, profile, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    if keep := os.environ.get("NETLAB_TEST_ARTIFACTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        for path in (page, shot):
            shutil.copy2(path, Path(keep) / path.name)
        print(f"kept: {Path(keep) / shot.name}")
    return shot


def _pods(lab: str) -> list[dict[str, Any]]:
    out = netlab_cli("get", "--lab", lab, "pods", "-l", "app=pic-web", "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["items"]


def _ready(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("podIP") is not None and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or [])


def _ready_endpoints(lab: str) -> int:
    out = netlab_cli("get", "--lab", lab, "endpointslices", "-l",
                     "kubernetes.io/service-name=pic-web", "-o", "json")
    return sum(1 for s in json.loads(out.stdout)["items"] for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready")) if out.returncode == 0 else 0


@pytest.fixture(scope="module")
def web(cluster_lab) -> list[dict[str, Any]]:
    """The Deployment's pods, Ready and behind the Service's endpoints."""
    out = netlab_cli("apply", "--lab", cluster_lab.name, "-f", "-", stdin=MANIFEST)
    assert out.returncode == 0, out.stderr
    pods = wait_for(lambda: (p if len(p := _pods(cluster_lab.name)) == REPLICAS
                             and all(map(_ready, p)) else None),
                    timeout=120, interval=0.5, what=f"{REPLICAS} Ready pic-web pods")
    wait_for(lambda: _ready_endpoints(cluster_lab.name) == REPLICAS, timeout=60,
             interval=0.5, what="the Service's endpoints")
    return pods


def test_the_lab_page_draws_every_node_tunnel_pod_and_service(cluster_lab, web, tmp_path):
    page = tmp_path / "lab.html"
    out = netlab_cli("graph", cluster_lab.name, "-o", "html", "--output-file", str(page))
    assert out.returncode == 0, out.stderr
    profile = tmp_path / "chromium-profile"
    parsed = _rendered(_browse(page, profile, "--dump-dom"))
    plan = cluster_lab.plan
    members = [n.name for n in plan.nodes if n.in_cluster]
    expected = [element_id("node", n.name) for n in plan.nodes]
    expected += [element_id("tunnel", a, b) for a, b in combinations(members, 2)]
    expected += [element_id("subnet", n) for n in members]
    expected += [element_id("pod", p["metadata"]["namespace"], p["metadata"]["name"])
                 for p in web]
    expected += [element_id("svc", "default", "pic-web"), element_id("bridge", "br0")]
    expected += [element_id("ep", "default", "pic-web", str(i)) for i in range(REPLICAS)]
    _assert_drawn(parsed, expected)
    text = page.read_text()
    assert f"lab {cluster_lab.name} is running" in text
    for pod in web:
        assert pod["status"]["podIP"] in text and pod["metadata"]["name"] in text
    _screenshot(page, profile)


def test_the_trace_pages_draw_every_hop(cluster_lab, web, tmp_path):
    lab = cluster_lab.name
    by_node: dict[str, list[dict[str, Any]]] = {}
    for pod in web:
        by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
    assert {"worker1", "worker2"} <= set(by_node), f"pods only on {sorted(by_node)}"
    src = by_node["worker1"][0]["metadata"]["name"]
    profile = tmp_path / "chromium-profile"

    # A Service trace as JSON, drawn by the renderer: every hop the document lists.
    out = netlab_cli("trace", "--lab", lab, src, "svc/pic-web:80", "-o", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    page = tmp_path / "trace-service.html"
    page.write_bytes(render(trace_scene(doc), "html"))
    parsed = _rendered(_browse(page, profile, "--dump-dom"))
    hops = [element_id("hop", h["path"], str(h["hop"])) for h in doc["hops"]]
    assert any(h.startswith("nl-hop.reply.") for h in hops)
    _assert_drawn(parsed, [*hops, "nl-verdict",
                           *{element_id("lane", h["netns"]) for h in doc["hops"]}])
    assert "DNAT 10.96." in page.read_text()
    _screenshot(page, profile)

    # The command's own page, for a cross-node trace (worker1 -> worker2).
    dst = by_node["worker2"][0]["status"]["podIP"]
    page = tmp_path / "trace-cross-node.html"
    out = netlab_cli("trace", "--lab", lab, src, dst, "--port", "8080", "-o", "html",
                     "--output-file", str(page))
    assert out.returncode == 0, out.stdout + out.stderr
    parsed = _rendered(_browse(page, profile, "--dump-dom"))
    forward = sorted((i for i in parsed.by_id if i.startswith("nl-hop.forward.")),
                     key=lambda i: int(i.rsplit(".", 1)[1]))
    reply = [i for i in parsed.by_id if i.startswith("nl-hop.reply.")]
    assert forward == [f"nl-hop.forward.{n}" for n in range(1, len(forward) + 1)]
    assert len(forward) >= 10 and reply, (forward, reply)  # pod, node, network, node, pod
    _assert_drawn(parsed, [*forward, *reply, "nl-verdict", element_id("lane", f"{lab}-net")])
    text = page.read_text()
    assert "ENCAP vni 1" in text and "DECAP vni 1" in text and "delivered" in text
    _screenshot(page, profile)
