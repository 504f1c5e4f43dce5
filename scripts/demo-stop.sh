#!/usr/bin/env bash
# Stops the `make demo` cluster by the PID it recorded; its containers go with it.
set -euo pipefail
cd "$(dirname "$0")/.."
pidfile=.demo/pid
if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "demo: no cluster running"; rm -f "$pidfile"; exit 0
fi
pid=$(cat "$pidfile")
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
rm -f "$pidfile"
echo "demo: stopped (the deployed stack stays in .demo/data; make demo brings it back)"
