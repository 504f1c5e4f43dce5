#!/usr/bin/env bash
# `make demo`: a local three-node cluster with the example stack deployed.
# The cluster keeps running in the background; `make demo-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.demo
mkdir -p "$state"
export CORRAL_MANAGER=https://127.0.0.1:7070
export CORRAL_CA=$state/data/ca.pem  # the API is HTTPS with the cluster's own CA, written by the manager at its first start
corral=.venv/bin/corral

if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
  echo "demo: a cluster is already running (pid $(cat "$state/pid"))"
else
  (umask 077; nohup "$corral" up --nodes 3 --data-dir "$state/data" --listen 127.0.0.1:7070 >"$state/cluster.log" 2>&1 &
  echo $! >"$state/pid")  # umask 077: the log is the user's alone
  for _ in $(seq 100); do [ -s "$state/data/admin-token" ] && "$corral" whoami --manager "$CORRAL_MANAGER" >/dev/null 2>&1 && break; sleep 0.2; done
fi
# Every API call needs a token: log the CLI in with the admin token the manager wrote, pinning the cluster CA,
# so that later `corral service ls` (any shell, no variables) just works.
"$corral" login "$CORRAL_MANAGER" --token-file "$state/data/admin-token" --ca "$CORRAL_CA" || { cat "$state/cluster.log"; exit 1; }

"$corral" deploy -c examples/compose.yaml --name demo
echo "demo: waiting for the replicas to run"
for _ in $(seq 60); do
  running=$("$corral" service ls --output json | .venv/bin/python -c 'import json,sys; print(sum(s["running"] for s in json.load(sys.stdin)))')
  [ "$running" -ge 6 ] && break
  sleep 0.5
done
echo
"$corral" node ls
echo
"$corral" service ls
echo
"$corral" service ps demo_web
echo
"$corral" service ps demo_worker
echo
"$corral" service endpoints demo_web
echo
echo "try: curl http://127.0.0.2:18080/   (or 127.0.0.3, 127.0.0.4: the routing mesh answers on every node)"
echo "The cluster runs in the background (pid $(cat "$state/pid"), log $state/cluster.log)."
echo "CLI: .venv/bin/corral --help (logged in as the cluster's admin: corral whoami; corral token create --role viewer --name ci)"
echo "Stop it (and its containers) with: make demo-stop"
