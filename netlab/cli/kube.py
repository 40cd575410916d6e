"""kubectl-style commands over the lab's unix socket: get, apply, delete, describe,
kubeconfig.

Output matches kubectl's: ``get`` asks the server for a Table (server-side
printing) and renders it with the same renderer, so columns are the ones
kubectl shows. Everything else is a thin call into ``netlab.client``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from netlab.api import resources
from netlab.api.tables import render_table
from netlab.api.views import meta_of
from netlab.cli.common import fail, lab_option


def _client(lab: str | None):
    from netlab.client import SyncClient, lab_client
    from netlab.lab import state

    try:
        lab = state.implied_lab(lab)
    except state.LabError as err:
        fail(str(err), 2)
    return SyncClient(lab_client(lab))


def _learn(lab: str | None) -> bool:
    """Ask the server which resources it serves beyond the built-ins (CRDs' resources)."""
    from netlab.client import APIError
    from netlab.client.discovery import learn

    with _client(lab) as client:
        try:
            return bool(client.run(learn(client.client)))
        except (APIError, OSError):
            return False


def _resolve(name: str, lab: str | None = None) -> resources.Resource:
    try:
        return resources.resolve(name)
    except resources.UnknownResourceError as err:
        if _learn(lab):  # not built in: maybe a custom resource the server serves
            try:
                return resources.resolve(name)
            except resources.UnknownResourceError:
                pass
        fail(str(err), 2)


def _resource_arg(res: resources.Resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _api_error(err: Exception) -> NoReturn:
    reason = getattr(err, "reason", "")
    fail(f"({reason}) {err}" if reason else str(err), 1)


namespace_option = click.option("-n", "--namespace", default=None,
                                help="Namespace (default: default).")


def _dump(obj: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(obj, indent=4))
    else:
        click.echo(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).rstrip())


@click.command()
@lab_option
@click.argument("resource")
@click.argument("names", nargs=-1)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), default=None)
@click.option("-l", "--selector", default=None, help="Label selector, e.g. app=web,tier!=db")
@click.option("--field-selector", default=None)
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes.")
@click.option("--show-labels", is_flag=True)
def get(lab: str | None, resource: str, names: tuple[str, ...], namespace: str | None,
        all_namespaces: bool, output: str | None, selector: str | None,
        field_selector: str | None, watch: bool, show_labels: bool) -> None:
    """Display resources, as kubectl get does."""
    from netlab.client import APIError

    res = _resolve(resource, lab)
    ns = None if (all_namespaces or not res.namespaced) else (namespace or "default")
    target = _resource_arg(res)
    with _client(lab) as client:
        try:
            if names:
                objs = [client.get(target, name, ns) for name in names]
                if output in ("json", "yaml"):
                    _dump(objs[0] if len(objs) == 1 else
                          {"apiVersion": "v1", "kind": "List", "items": objs}, output)
                    return
                if output == "name":
                    for obj in objs:
                        click.echo(f"{res.singular}/{obj['metadata']['name']}")
                    return
            if output in ("json", "yaml", "name"):
                listing = client.list(target, ns, label_selector=selector,
                                      field_selector=field_selector)
                if output == "name":
                    for obj in listing.get("items", []):
                        group = f".{res.group}" if res.group else ""
                        click.echo(f"{res.singular}{group}/{obj['metadata']['name']}")
                    return
                _dump(listing, output)
                return
            table = client.list(target, ns, label_selector=selector,
                                field_selector=field_selector, as_table=True)
            if names:  # only the named objects, in the order given
                by_name = {r["object"]["metadata"]["name"]: r for r in table.get("rows", [])
                           if isinstance(r.get("object"), dict)}
                table["rows"] = [by_name[n] for n in names if n in by_name]
            wide = output == "wide"
            if table.get("rows"):
                click.echo(render_table(table, wide=wide, show_namespace=ns is None and
                                        res.namespaced, show_labels=show_labels))
            elif not watch:
                where = f" in {ns} namespace" if ns else ""
                click.echo(f"No resources found{where}.", err=True)
            if watch:
                rv = meta_of(table).get("resourceVersion")
                for event in client.watch(target, ns, resource_version=rv,
                                          label_selector=selector,
                                          field_selector=field_selector, as_table=True):
                    if event.get("type") in ("BOOKMARK", "ERROR"):
                        continue
                    click.echo(render_table(event["object"], wide=wide, no_headers=True,
                                            show_namespace=ns is None and res.namespaced))
        except APIError as err:
            _api_error(err)
        except KeyboardInterrupt:
            pass


def _manifests(files: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for spec in files:
        paths = [Path("-")] if spec == "-" else (
            sorted(p for p in Path(spec).iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            if Path(spec).is_dir() else [Path(spec)])
        for path in paths:
            try:
                text = sys.stdin.read() if str(path) == "-" else path.read_text()
                docs = list(yaml.safe_load_all(text))
            except OSError as err:
                fail(f"the path {path} cannot be read: {err.strerror}", 2)
            except yaml.YAMLError as err:
                fail(f"error parsing {path}: {err}", 2)
            for doc in docs:
                if doc is None:
                    continue
                items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
                for item in items:
                    if not isinstance(item, dict) or "kind" not in item:
                        fail(f"error validating {path}: a document has no kind", 2)
                    yield str(path), item


def _display(obj: dict[str, Any]) -> str:
    res = resources.by_api_version_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    kind = (res.singular + (f".{res.group}" if res.group else "")) if res else obj.get("kind")
    return f"{kind}/{meta_of(obj).get('name')}"


@click.command()
@lab_option
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="A manifest file, a directory of them, or - for stdin.")
@namespace_option
def apply(lab: str | None, files: tuple[str, ...], namespace: str | None) -> None:
    """Create or update objects from manifests, as kubectl apply does."""
    from netlab.client import APIError
    from netlab.client.apply import apply_object

    manifests = list(_manifests(files))
    with _client(lab) as client:
        failed = False
        for _, obj in manifests:
            if resources.by_api_version_kind(obj.get("apiVersion", ""),
                                             obj.get("kind", "")) is None:
                from netlab.client.discovery import learn

                # Maybe a custom resource (perhaps of a CRD applied just before).
                with contextlib.suppress(APIError, OSError):
                    client.run(learn(client.client))
            try:
                outcome, result = client.run(apply_object(client.client, obj, namespace))
                click.echo(f"{_display(result)} {outcome}")
            except (APIError, resources.UnknownResourceError) as err:
                click.echo(f"error: {_display(obj)}: {err}", err=True)
                failed = True
        if failed:
            sys.exit(1)


def _wait_gone(client, target: str, name: str | None, ns: str | None,
               timeout: float = 60.0) -> bool:
    from netlab.client import APIError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get(target, name, ns)
        except APIError as err:
            if err.not_found:
                return True
            raise
        time.sleep(0.1)  # probe interval until the object is gone
    return False


@click.command()
@lab_option
@click.argument("resource", required=False)
@click.argument("names", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True)
@namespace_option
@click.option("--wait/--no-wait", default=True, help="Return only once the objects are gone.")
@click.option("--cascade", type=click.Choice(["background", "foreground", "orphan"]),
              default="background")
@click.option("--grace-period", type=int, default=None)
def delete(lab: str | None, resource: str | None, names: tuple[str, ...],
           files: tuple[str, ...], namespace: str | None, wait: bool, cascade: str,
           grace_period: int | None) -> None:
    """Delete objects by name or from manifests, as kubectl delete does."""
    from netlab.client import APIError

    # (resource, name, namespace); the name is None for a manifest without one
    targets: list[tuple[resources.Resource, str | None, str | None]] = []
    for _, obj in _manifests(files):
        res = _resolve(f"{obj['kind']}", lab)
        meta = meta_of(obj)
        targets.append((res, meta.get("name"), (meta.get("namespace") or namespace or "default")
                        if res.namespaced else None))
    if resource:
        res = _resolve(resource, lab)
        if not names:
            fail("resource(s) were provided, but no name was specified", 2)
        targets += [(res, n, (namespace or "default") if res.namespaced else None)
                    for n in names]
    if not targets:
        fail("you must provide one or more resources by argument or filename", 2)
    failed = False
    with _client(lab) as client:
        for res, name, ns in targets:
            target = _resource_arg(res)
            try:
                client.delete(target, name, ns, propagation=cascade.capitalize(),
                              grace_period=grace_period)
                if wait and not _wait_gone(client, target, name, ns):
                    click.echo(f"error: timed out waiting for {res.singular} {name!r} to go",
                               err=True)
                    failed = True
                    continue
                click.echo(f'{res.singular} "{name}" deleted')
            except APIError as err:
                click.echo(f"Error from server ({err.reason}): {err}", err=True)
                failed = True
    if failed:
        sys.exit(1)


def _describe_text(obj: dict[str, Any], events: list[dict[str, Any]]) -> str:
    meta = meta_of(obj)
    lines = [f"Name:         {meta.get('name')}"]
    if meta.get("namespace"):
        lines.append(f"Namespace:    {meta['namespace']}")
    for title, values in (("Labels", meta.get("labels")), ("Annotations", meta.get("annotations"))):
        pairs = [f"{k}={v}" for k, v in (values or {}).items()
                 if k != "kubectl.kubernetes.io/last-applied-configuration"] or ["<none>"]
        lines.append(f"{title + ':':<14}{pairs[0]}")
        lines += [" " * 14 + p for p in pairs[1:]]
    lines.append(f"API Version:  {obj.get('apiVersion')}")
    lines.append(f"Kind:         {obj.get('kind')}")
    for section in ("spec", "status", "subsets", "data"):
        if obj.get(section):
            body = yaml.safe_dump(obj[section], sort_keys=False, default_flow_style=False)
            lines.append(f"{section.capitalize()}:")
            lines += ["  " + line for line in body.rstrip().splitlines()]
    lines.append("Events:" + ("  <none>" if not events else ""))
    if events:
        lines.append("  Type    Reason    Age    From    Message")
        for ev in events:
            source = (ev.get("source") or {}).get("component", "")
            lines.append(f"  {ev.get('type', '')}  {ev.get('reason', '')}  "
                         f"{ev.get('lastTimestamp') or ''}  {source}  {ev.get('message', '')}")
    return "\n".join(lines)


@click.command()
@lab_option
@click.argument("resource")
@click.argument("name")
@namespace_option
def describe(lab: str | None, resource: str, name: str, namespace: str | None) -> None:
    """Show an object with its events."""
    from netlab.client import APIError

    res = _resolve(resource, lab)
    ns = (namespace or "default") if res.namespaced else None
    with _client(lab) as client:
        try:
            obj = client.get(_resource_arg(res), name, ns)
            selector = f"involvedObject.name={name}"
            events = client.list("events", ns, field_selector=selector).get("items", [])
        except APIError as err:
            _api_error(err)
    click.echo(_describe_text(obj, events))


@click.command()
@lab_option
def kubeconfig(lab: str | None) -> None:
    """Print a kubeconfig for the lab's loopback listener.

    Use: kubectl --kubeconfig <(netlab kubeconfig) get nodes
    """
    import base64

    from netlab.lab import control, state
    from netlab.lab.pki import pki_paths
    from netlab.lab.state import lab_dir, token_path

    try:
        lab = state.implied_lab(lab)
        endpoint = control.endpoints(lab)["loopback"]
        token = token_path(lab).read_text().strip()
        ca = base64.b64encode(pki_paths(lab_dir(lab)).ca_cert.read_bytes()).decode()
    except (state.LabError, control.ControlPlaneError, OSError) as err:
        fail(str(err), 2)
    name = f"netlab-{lab}"
    click.echo(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": f"https://{endpoint}",
                                                "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                "namespace": "default"}}],
        "preferences": {},
    }, sort_keys=False).rstrip())


COMMANDS = [get, apply, delete, describe, kubeconfig]
