#!/usr/bin/env bash
# make demo: render -> build -> push the reference worker (rpdeploy.yaml, worker/) to the local
# registry and print the image reference with its digest and size. `make demo` brings the stack up
# first (scripts/stack.sh up), whose facts (registry, base image, package index) are in stack.env.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATE=${RPDEPLOY_STATE:-$PWD/.state}
[ -f "$STATE/stack.env" ] || {
	echo "demo: $STATE/stack.env is missing; run scripts/stack.sh up (or make demo)" >&2
	exit 1
}
set -a
# shellcheck disable=SC1091  # written at run time by scripts/stack.sh
. "$STATE/stack.env"
set +a
RPDEPLOY=${RPDEPLOY:-.venv/bin/rpdeploy}
RESULT=$STATE/demo-push.json

echo "demo: render" >&2
"$RPDEPLOY" render
echo "demo: build" >&2
"$RPDEPLOY" build
echo "demo: push" >&2
"$RPDEPLOY" push --output json >"$RESULT"
"${PYTHON:-.venv/bin/python}" - "$RESULT" <<'PY'
import json, sys
envelope = json.load(open(sys.argv[1]))  # README, "JSON output"
if envelope["version"] != 2 or envelope["status"] != "ok":
    sys.exit(f"demo: push did not succeed: {envelope['status']}: {envelope['error']}")
r = envelope["data"]
s = r["size"]
print(f"image:  {r['image']}")
print(f"tags:   {', '.join(r['tags'])}")
print(f"size:   {s['compressed_bytes'] / 1e6:.2f} MB compressed, {s['uncompressed_bytes'] / 1e6:.2f} MB uncompressed, {len(s['layers'])} layers")
PY
