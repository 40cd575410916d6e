"""Examples for every command's ``--help``, in one place.

:func:`add_examples` walks the command tree once, when ``netlab.cli.main`` has
assembled it, and gives each command without examples of its own (``graph`` and
``trace`` keep theirs, in their docstrings) an ``Examples:`` epilog from
:data:`EXAMPLES`. A unit test walks the same tree, so a new command without
examples fails there rather than reaching users bare.
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, tuple[str, ...]] = {
    "up": ("sudo netlab up topologies/demo.yaml",
           "sudo netlab up --dry-run topologies/multi-rack.yaml   # the plan, nothing built",
           "sudo netlab up --network-only topologies/flat.yaml"),
    "down": ("sudo netlab down demo",),
    "validate": ("netlab validate topologies/three-tier.yaml",),
    "list": ("sudo netlab list", "sudo netlab list -o json"),
    "status": ("sudo netlab status demo", "sudo netlab status demo -o json"),
    "kubeconfig": ("sudo netlab kubeconfig --lab demo > demo.kubeconfig",
                   "KUBECONFIG=demo.kubeconfig kubectl get nodes"),
    "apply": ("sudo netlab apply -f app.yaml",
              "kubectl create deployment web --image=netlab/echo --dry-run=client -o yaml | "
              "sudo netlab apply -f -"),
    "delete": ("sudo netlab delete pod web-0", "sudo netlab delete -f app.yaml --wait"),
    "get": ("sudo netlab get pods -A -o wide", "sudo netlab get svc web -o yaml",
            "sudo netlab get pods -l app=web -w"),
    "describe": ("sudo netlab describe pod web-0", "sudo netlab describe node worker1"),
    "logs": ("sudo netlab logs web-0 -f", "sudo netlab logs web-0 -c app --previous --tail 20"),
    "exec": ("sudo netlab exec web-0 -- ip addr", "sudo netlab exec -it web-0 -- sh"),
    "top": ("sudo netlab top nodes", "sudo netlab top pods -A -o json"),
    "shell": ("sudo netlab shell worker1   # then: ip route, nft list ruleset",),
    "capture": ("sudo netlab capture worker1 vxlan0 -- -n -c 5 udp port 8472",
                "sudo netlab capture web-0 -- -c 10   # a pod: its eth0"),
    "etcdctl": ("sudo netlab etcdctl -- get /registry/pods --prefix --keys-only",),
    "completion": ("source <(netlab completion bash)",
                   "netlab completion fish > ~/.config/fish/completions/netlab.fish"),
    "dns lookup": ("sudo netlab dns lookup web", "sudo netlab dns lookup web.prod -n prod -o json",
                   "sudo netlab dns lookup _http._tcp.web --type SRV"),
    "fault link-down": ("sudo netlab fault link-down worker2",),
    "fault link-up": ("sudo netlab fault link-up worker2",),
    "fault kill": ("sudo netlab fault kill kubelet worker1",
                   "sudo netlab fault kill scheduler -s KILL"),
    "fault status": ("sudo netlab fault status", "sudo netlab fault status -o json"),
    "image load": ("skopeo copy docker://... docker-archive:app.tar && "
                   "sudo netlab image load app.tar",
                   "docker save app:v1 | sudo netlab image load -"),
    "image ls": ("sudo netlab image ls", "sudo netlab image ls -o json"),
    "image rm": ("sudo netlab image rm app:v1",),
    "image pull": ("sudo netlab image pull 192.168.100.2:5000/team/app:v1",
                   "sudo netlab image pull localhost:5000/app --creds alice:secret"),
    "image build-busybox": ("sudo netlab image build-busybox   # busybox and alpine again",),
    "policy show": ("sudo netlab policy show worker1",),
    "policy check": ("sudo netlab policy check frontend-0 backend-0 8080",
                     "sudo netlab policy check frontend-0 backend-0 53/udp -o json"),
    "proxy show": ("sudo netlab proxy show worker1", "sudo netlab proxy show worker1 -o json"),
}


def _format(lines: tuple[str, ...]) -> str:
    # \b keeps click from rewrapping the block.
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every leaf command of ``group`` by its path (``"image ls"``)."""
    out: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out.update(commands(cmd, path + " "))
        else:
            out[path] = cmd
    return out


def has_examples(cmd: click.Command) -> bool:
    return "Examples:" in (cmd.help or "") or "Examples:" in (cmd.epilog or "")


def add_examples(group: click.Group) -> None:
    for path, cmd in commands(group).items():
        if not has_examples(cmd) and path in EXAMPLES:
            cmd.epilog = _format(EXAMPLES[path])
