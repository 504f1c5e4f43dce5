#!/usr/bin/env bash
# Builds corral-demo:latest (FROM scratch + Debian's static busybox) from examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -r examples/Dockerfile examples/www "$context"/
cp /bin/busybox "$context"/busybox
if ! out=$(docker build -q -t corral-demo:latest "$context" 2>&1); then
  echo "$out" >&2
  exit 1
fi
echo "setup: built image corral-demo:latest"
