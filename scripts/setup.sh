#!/usr/bin/env bash
# netlab's whole set-up on a fresh Debian or Ubuntu machine, as root. Idempotent.
#
#   scripts/setup.sh demo   install, bring up topologies/demo.yaml, print its status
#   scripts/setup.sh test   install, then run ruff, mypy (netlab/, as setup.cfg configures
#                           it), the whole test suite (all tiers) and the examples
#                           (examples/, on the netlab.testing pytest plugin)
#
# Installs: the OS packages netlab and its tests use (iproute2, nftables, tcpdump,
# ping, conntrack, netcat, dig, curl, Python's venv, Graphviz, Chromium, etcd and
# etcdctl, busybox-static, umoci, skopeo and docker-registry, crun, conmon and
# containers-common's seccomp profile, socat), a virtualenv in .venv with netlab and its
# test extras, `netlab` on root's PATH (/usr/local/bin/netlab), and the busybox and
# alpine images in the image store (/var/lib/netlab/images), built from busybox-static.
set -euo pipefail

mode=${1:-}
case "$mode" in demo|test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0 $mode): labs need network namespaces" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# netcat-openbsd: the README's NodePort example runs nc from the client node.
# dnsutils (dig, nslookup) and curl: what people run inside pods to try cluster DNS.
# busybox-static: the busybox and alpine images are built from it (nothing is pulled).
# umoci and skopeo: the image tests build and convert archives with them, as users do.
# graphviz: 'netlab graph' and 'netlab trace -o svg|html' lay pictures out with its dot;
# fonts-dejavu-core gives it (and the browser) a font to measure and draw text with.
# chromium: the lab tests open those pictures' HTML pages headless and check the DOM.
# crun, conmon: the OCI runtime and container monitor of the CRI-O stack (issue 12);
# golang-github-containers-common ships /usr/share/containers/seccomp.json, the default
# seccomp profile of CRI-O and podman, which netlab's OCI configs use (netlab/node/runtime/oci.py).
# socat: bench/portforward_throughput.py relays the port-forward's hops with it as a C floor.
packages=(iproute2 nftables tcpdump iputils-ping conntrack procps netcat-openbsd python3
          python3-venv python3-pip dnsutils curl busybox-static umoci skopeo graphviz
          fonts-dejavu-core chromium crun conmon golang-github-containers-common socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing OS packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# etcd-server and etcd-client: labs with 'cluster.store: etcd' run their own etcd member
# inside the lab's namespaces, and the store tests run throwaway ones on 127.0.0.1.
# docker-registry: the pull tests run their own registry ('docker-registry serve CONFIG')
# inside a lab namespace. Debian starts a host-wide etcd and registry on install; a
# temporary policy-rc.d (exit 101) prevents that, and the units are disabled. A service
# that was there before is left alone.
etcd_missing=()
for p in etcd-server etcd-client docker-registry; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || etcd_missing+=("$p")
done
if [ ${#etcd_missing[@]} -gt 0 ]; then
  echo "installing OS packages: ${etcd_missing[*]} (without starting their services)"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  restore_policy() {
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  [ ${#missing[@]} -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${etcd_missing[@]}" >/dev/null
  restore_policy
  trap - EXIT
  if [ -d /run/systemd/system ]; then
    for unit in "${etcd_missing[@]}"; do
      case "$unit" in
        etcd-server) unit=etcd ;;
        etcd-client) continue ;;
      esac
      if systemctl list-unit-files "$unit.service" >/dev/null 2>&1; then
        systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
venv="$repo/.venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo[test]"
ln -sf "$venv/bin/netlab" /usr/local/bin/netlab
# `kubectl run --image=busybox` must run: build busybox and alpine into the store
# (idempotent: the same binary gives the same image, and a present one is left alone).
"$venv/bin/netlab" image build-busybox

case "$mode" in
  demo)
    if netlab status demo >/dev/null 2>&1; then
      echo "the demo lab is already up"
    else
      netlab up topologies/demo.yaml
    fi
    netlab status demo
    ;;
  test)
    "$venv/bin/ruff" check netlab tests bench examples
    "$venv/bin/mypy"  # files, strictness and cache: setup.cfg [mypy]
    # The unit tier is pure and busy on the CPU while the kernel and lab tiers mostly
    # wait on their labs, so it runs beside them: in the background, in a temporary
    # directory of its own, without the sweep of leftover labs (that is the other run's
    # job); its report follows theirs. examples/: a user's suite on the netlab.testing
    # plugin; --netlab-require makes a host that cannot run labs fail, not skip them.
    unit_log=$(mktemp) unit_tmp=$(mktemp -d)
    # Job control on for the launch: a script's background job otherwise starts with
    # SIGINT and SIGQUIT ignored, and so would every command the tests run (^C on a pty).
    set -m
    NETLAB_TEST_NO_SWEEP=1 "$venv/bin/python" -m pytest -p no:cacheprovider --durations=5 \
      --basetemp="$unit_tmp" -m unit tests >"$unit_log" 2>&1 &
    unit=$!
    set +m
    status=0
    "$venv/bin/python" -m pytest -p no:cacheprovider --durations=15 --netlab-require \
      -m "not unit" tests examples || status=$?
    unit_status=0
    wait "$unit" || unit_status=$?
    echo "=== the unit tier (run beside the others) ==="
    cat "$unit_log"
    rm -rf "$unit_log" "$unit_tmp"
    if [ "$status" -eq 0 ]; then status=$unit_status; fi
    exit "$status"
    ;;
esac
