#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a fresh Debian machine:
# Debian packages, a running Docker engine, the venv with corral, the demo image.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x httpd >/dev/null || need_apt+=(busybox-static)  # no -q: an early exit would SIGPIPE busybox under pipefail
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v skopeo >/dev/null || need_apt+=(skopeo)                    # registry tests and bench
command -v docker-registry >/dev/null || need_apt+=(docker-registry)  # bench/registry.py's baseline
command -v iptables-restore >/dev/null || need_apt+=(iptables)        # the mesh's kernel data path
command -v wrk >/dev/null || need_apt+=(wrk)                          # bench/mesh.py's load
command -v etcd >/dev/null || need_apt+=(etcd-server)                 # the etcd store backend's tests (each starts its own)
command -v chromium >/dev/null || need_apt+=(chromium)                # the web UI's browser tests (tests/ui)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)          # the web UI in Firefox too (over its own WebDriver BiDi)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need_apt[@]}" >/dev/null
  # Debian starts docker-registry as a service on :5000, the port corral's own registry wants: the bench starts its own.
  if [[ " ${need_apt[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
  # Debian may start etcd as a service on the default ports (2379/2380): tests start their own on free ports.
  if [[ " ${need_apt[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/corral-dockerd.log)"
  nohup dockerd >/var/log/corral-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/corral-dockerd.log" >&2; exit 1; }
fi

if [ ! -x .venv/bin/corral ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: creating .venv and installing corral"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

scripts/build-demo-image.sh
