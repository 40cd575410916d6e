"""The OCI runtime configuration (``config.json``) of a container, as CRI-O and
containerd generate it for crun or runc.

A container to start is a ``ContainerSpec`` (what the kubelet asked for) in a pod
sandbox (the pinned network and UTS namespaces, the pod's ``/etc`` files). ``build``
turns that into the OCI runtime-spec document an OCI runtime (Debian's ``crun``)
runs from a bundle directory:

- ``process``: argv, env (``K=V``), cwd, the numeric user (``resolve_user`` reads
  the image's ``/etc/passwd`` and ``/etc/group`` for a User given by name, as CRI-O
  does before it writes the spec: runtimes take numbers only), the capability sets
  (containerd's and CRI-O's default set with ``capabilities.add/drop``, every
  capability when privileged; a non-root user keeps the bounding set only, as
  Docker and containerd give it no effective capabilities), ``noNewPrivileges``
  from ``allowPrivilegeEscalation: false``;
- ``root``: the bundle's root directory, read-only for ``readOnlyRootFilesystem``;
- ``mounts``: ``/proc``, a tmpfs ``/dev`` with devpts, ``/dev/shm`` and
  ``/dev/mqueue``, ``/sys`` read-only (writable when privileged), the pod's
  ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``, and extra bind mounts
  the caller adds (the read-only host view of built-in images and host programs),
  then the pod's volumes, ``rprivate`` or as their ``mountPropagation`` asks
  (``rslave``, ``rshared``, with ``linux.rootfsPropagation`` to match, as CRI-O);
- ``linux.namespaces``: the pod's network and UTS namespaces joined by path, new
  pid (or the target container's, joined by path, for an ephemeral container with
  ``targetContainerName``), mount and ipc namespaces;
- ``linux.cgroupsPath`` (under netlab's cgroup layout, ``cgroups.py``) and
  ``linux.resources`` with the CPU quota and shares and the memory limit computed
  as ``cgroups.set_limits`` writes them;
- ``linux.maskedPaths`` and ``linux.readonlyPaths`` as containerd's defaults (none
  for a privileged container), plus the lab's own directories to mask;
- ``linux.seccomp``: the default profile of CRI-O and podman
  (``/usr/share/containers/seccomp.json``, from containers-common) converted for
  this architecture and the container's capabilities (``seccomp_for``), unless
  the container is Unconfined or privileged.

Pure: data in, a JSON-ready dict out (the caller reads the profile file and the
image's passwd/group).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netlab.node.runtime import capabilities
from netlab.node.runtime.cgroups import CFS_PERIOD_US, MIN_CFS_QUOTA_US
from netlab.node.runtime.security import UNCONFINED
from netlab.node.runtime.spec import ContainerSpec

OCI_VERSION = "1.0.2"
DEFAULT_SECCOMP_PROFILE = "/usr/share/containers/seccomp.json"

# containerd's defaults (oci.populateDefaultUnixSpec); CRI-O's are the same list.
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap",
                "/proc/scsi")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# uname -m -> the Go architecture names containers-common's profile uses in its
# includes/excludes, and libseccomp's name of the native architecture.
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64",
              "386": "SCMP_ARCH_X86", "arm": "SCMP_ARCH_ARM",
              "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
              "riscv64": "SCMP_ARCH_RISCV64"}


class OciConfigError(ValueError):
    """The container cannot be expressed as an OCI config (the message says why)."""


@dataclass(frozen=True)
class Bind:
    """A bind mount of a host path into the container."""

    source: str
    destination: str
    read_only: bool = True
    # The bind's propagation: rprivate, or a volume's mountPropagation as CRI-O maps
    # it (HostToContainer rslave, Bidirectional rshared).
    propagation: str = "rprivate"


@dataclass(frozen=True)
class SandboxPaths:
    """What the pod sandbox gives every container: namespaces to join, /etc files."""

    netns: str  # /run/netns/<pod netns>
    uts: str  # the pinned UTS namespace
    hosts: str
    hostname: str
    resolv: str


@dataclass(frozen=True)
class ProcessUser:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class BundleOptions:
    """Where the container's pieces are on the host."""

    root: str  # the root filesystem directory (an overlay mounted there, or a plain dir)
    cgroups_path: str | None = None
    binds: tuple[Bind, ...] = ()  # extra binds (the host view), after the standard mounts
    masked: tuple[str, ...] = ()  # extra paths to mask (the lab's own directories)
    seccomp_profile: Mapping[str, Any] | None = None  # containers-common's document
    host_caps: tuple[str, ...] | None = None  # what a privileged container gets (all)
    volumes: tuple[Bind, ...] = ()  # the pod's volumes, sources resolved, mounted last


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 2]


def resolve_user(user: str | None, passwd: str = "", group: str = "") -> ProcessUser:
    """``user[:group]`` (names or numbers) in the image's ``/etc/passwd`` and
    ``/etc/group`` texts, as runc's and CRI-O's user lookup resolves it: a number
    not in passwd is that uid with gid 0; the user's supplementary groups are the
    groups listing its name. Raises OciConfigError for an unknown name."""
    name, _, grp = (user or "").partition(":")
    users, groups = _table(passwd), _table(group)
    row = next((r for r in users if len(r) > 3 and name in (r[0], r[2])), None)
    if not name:
        uid, gid = 0, 0
    elif row is not None:
        uid, gid = int(row[2]), int(row[3])
    elif name.isdigit():
        uid, gid = int(name), 0
    else:
        raise OciConfigError(f"unable to find user {name}: no matching entries in passwd file")
    if grp:
        found = next((r for r in groups if grp in (r[0], r[2])), None)
        if found is not None:
            gid = int(found[2])
        elif grp.isdigit():
            gid = int(grp)
        else:
            raise OciConfigError(f"unable to find group {grp}: no matching entries in group file")
    member = row[0] if row is not None else None
    extra = sorted({int(r[2]) for r in groups if len(r) > 3 and member
                    and member in r[3].split(",")} - {gid})
    return ProcessUser(uid, gid, tuple(extra))


def _cap_names(names: Iterable[str]) -> list[str]:
    return [f"CAP_{n}" for n in sorted(names, key=lambda n: capabilities.NUMBERS[n])]


def process_capabilities(spec: ContainerSpec, uid: int,
                         host: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The OCI capability sets of the container's process. ``host``: what the runtime
    itself holds, all a privileged container can get (default: every one)."""
    kept = spec.kept_capabilities()
    everything = capabilities.NUMBERS if host is None else {capabilities.normalise(c)
                                                            for c in host}
    names = _cap_names(everything if kept is None else kept)
    # A non-root process gets no effective or permitted capabilities (what Docker and
    # containerd do), only the bounding set that limits what a setuid binary regains.
    active = names if uid == 0 else []
    return {"bounding": names, "permitted": active, "effective": active,
            "inheritable": [], "ambient": []}


def resources(spec: ContainerSpec) -> dict[str, Any]:
    """CPU and memory as ``cgroups.set_limits`` writes them (the kubelet's formulas)."""
    out: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    if spec.cpu_limit_millis is not None:
        cpu["quota"] = max(MIN_CFS_QUOTA_US, spec.cpu_limit_millis * CFS_PERIOD_US // 1000)
        cpu["period"] = CFS_PERIOD_US
    if spec.cpu_request_millis is not None:
        cpu["shares"] = max(2, spec.cpu_request_millis * 1024 // 1000)
    if cpu:
        out["cpu"] = cpu
    if spec.memory_limit_bytes is not None:
        out["memory"] = {"limit": spec.memory_limit_bytes}
    return out


def standard_mounts(sb: SandboxPaths, privileged: bool,
                    binds: Iterable[Bind] = ()) -> list[dict[str, Any]]:
    """containerd's default mounts, ``binds``, then the pod's /etc files (last, so a
    bind of the host's /etc does not cover them)."""
    sys_options = ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]
    proc = {"destination": "/proc", "type": "proc", "source": "proc",
            "options": ["nosuid", "noexec", "nodev"]}
    sysfs = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}
    mounts: list[dict[str, Any]] = [proc, sysfs, {
        # Privileged: the host's devices, as containerd and CRI-O give them.
        "destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "rw"]},
    ] if privileged else [
        proc,
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        sysfs,
    ]
    mounts += [_bind(b) for b in binds]
    for source, destination in ((sb.hosts, "/etc/hosts"), (sb.hostname, "/etc/hostname"),
                                (sb.resolv, "/etc/resolv.conf")):
        mounts.append({"destination": destination, "type": "bind", "source": source,
                       "options": ["rbind", "rprivate", "rw"]})
    return mounts


def _bind(b: Bind) -> dict[str, Any]:
    # A read-only view also gets nosuid/nodev; a writable bind (privileged) is the
    # host's directory as it is.
    options = ["rbind", b.propagation, "ro", "nosuid", "nodev"] if b.read_only else \
        ["rbind", b.propagation, "rw"]
    return {"destination": b.destination, "type": "bind", "source": b.source,
            "options": options}


def _kernel_tuple(release: str) -> tuple[int, int]:
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def seccomp_for(profile: Mapping[str, Any], caps: Iterable[str], machine: str | None = None,
                kernel: str | None = None) -> dict[str, Any]:
    """containers-common's profile (Docker's format: ``archMap``, ``includes``,
    ``excludes``) as the OCI ``linux.seccomp`` for this architecture and these
    capabilities, as containers/common's ``setupSeccomp`` converts it: a rule is kept
    when every capability and architecture it includes is there, none it excludes
    is, and the kernel is at least its ``minKernel``."""
    go_arch = _GO_ARCH.get(machine or platform.machine(), machine or platform.machine())
    have = {f"CAP_{c}" if not c.startswith("CAP_") else c for c in caps}
    running = _kernel_tuple(kernel or platform.release())
    architectures: list[str] = []
    native = _SCMP_ARCH.get(go_arch)
    for entry in profile.get("archMap") or ():
        if native is not None and entry.get("architecture") == native:
            architectures = [native, *(entry.get("subArchitectures") or [])]
    syscalls = []
    for rule in profile.get("syscalls") or ():
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and go_arch not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= have:
            continue
        if inc.get("minKernel") and running < _kernel_tuple(str(inc["minKernel"])):
            continue
        if exc.get("arches") and go_arch in exc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & have:
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        out: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            out["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                           for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    if not architectures and not profile.get("archMap"):
        # A profile in the OCI format names its architectures itself.
        architectures = [str(a) for a in profile.get("architectures") or ()]
    doc: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "SCMP_ACT_ERRNO"),
                           "architectures": architectures, "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        doc["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return doc


def build(spec: ContainerSpec, sb: SandboxPaths, opts: BundleOptions,
          user: ProcessUser = ProcessUser(), hostname: str | None = None) -> dict[str, Any]:
    """The container's ``config.json`` (see the module docstring)."""
    if not spec.argv:
        raise OciConfigError(f"container {spec.name} has no command to run")
    caps = process_capabilities(spec, user.uid, opts.host_caps)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           **({"HOSTNAME": hostname} if hostname else {}),
           # CRI-O gives a terminal's process TERM=xterm (the pod's env still wins).
           **({"TERM": "xterm"} if spec.tty else {}), **spec.env}
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": {"uid": user.uid, "gid": user.gid,
                 **({"additionalGids": list(user.additional_gids)}
                    if user.additional_gids else {})},
        "args": list(spec.argv),
        "env": [f"{k}={v}" for k, v in env.items()],
        "cwd": spec.working_dir or "/",
        "capabilities": caps,
        "noNewPrivileges": spec.no_new_privs,
    }
    mounts = standard_mounts(sb, spec.privileged, opts.binds)
    # Volumes last, shallowest destination first, so a volume inside another lands on it.
    mounts += [_bind(v) for v in sorted(opts.volumes, key=lambda v: len(
        [p for p in v.destination.split("/") if p]))]
    namespaces = [{"type": "network", "path": sb.netns}, {"type": "uts", "path": sb.uts},
                  {"type": "pid", **({"path": spec.pid_namespace} if spec.pid_namespace
                                     else {})},
                  {"type": "ipc"}, {"type": "mount"}]
    linux: dict[str, Any] = {"namespaces": namespaces, "resources": resources(spec)}
    propagations = {v.propagation for v in opts.volumes}
    if "rshared" in propagations or "rslave" in propagations:
        # As CRI-O: the root must pass propagation on to the volume's bind (crun makes
        # it rprivate otherwise, and the bind's copy of its source with it).
        linux["rootfsPropagation"] = "rshared" if "rshared" in propagations else "rslave"
    if opts.cgroups_path:
        linux["cgroupsPath"] = opts.cgroups_path
    if not spec.privileged:
        linux["maskedPaths"] = [*MASKED_PATHS, *opts.masked]
        linux["readonlyPaths"] = list(READONLY_PATHS)
        if spec.seccomp != UNCONFINED:
            # RuntimeDefault: containers-common's profile; Localhost: the one the pod
            # names (opts carries either, read by the bundle).
            if opts.seccomp_profile is None:
                raise OciConfigError("the runtime's default seccomp profile is missing "
                                     f"({DEFAULT_SECCOMP_PROFILE}: install containers-common)")
            linux["seccomp"] = seccomp_for(opts.seccomp_profile, caps["bounding"])
    return {"ociVersion": OCI_VERSION, "process": process,
            "root": {"path": opts.root, "readonly": spec.read_only_root},
            "mounts": mounts, "linux": linux}


# Never bound from the host: the container has its own.
OWN_TOP_LEVEL = ("proc", "sys", "dev")

HOST_VIEW = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")


def host_view_binds(install: Sequence[str], links: Mapping[str, str] | None = None
                    ) -> tuple[Bind, ...]:
    """The read-only view of the host a built-in image or host program runs in:
    ``/usr``, ``/lib*``, ``/bin``, ``/sbin``, ``/etc`` and netlab's own install (a
    virtualenv may sit anywhere), all read-only; the container's writes land in its
    own root directory. ``links`` names the top-level paths that are symbolic links
    on this host (merged /usr: ``/bin`` -> ``usr/bin``): the caller makes the same
    links in the root instead of binding them."""
    skip = set(links or {})
    return tuple(Bind(p, p) for p in (*HOST_VIEW, *install) if p not in skip)


def whole_host_binds(top_level: Sequence[str], links: Mapping[str, str] | None = None
                     ) -> tuple[Bind, ...]:
    """A privileged container without an image: every top-level directory of the
    host (``top_level``: the names in ``/``), writable, except /proc, /sys and /dev
    (its own); the host's top-level links (``links``) are made as links."""
    skip = set(links or {})
    return tuple(Bind(f"/{name}", f"/{name}", read_only=False) for name in sorted(top_level)
                 if name not in OWN_TOP_LEVEL and f"/{name}" not in skip)
