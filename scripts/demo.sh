#!/usr/bin/env bash
# make demo: render -> build -> push the reference worker (rpdeploy.yaml, worker/) to the local
# registry, then deploy it to the local emulator: `rpdeploy plan` (changes, preflight, cost) and
# `rpdeploy apply --wait`. A second run is a no-op apply (zero write calls). `make demo` brings the
# stack up first (scripts/stack.sh up), whose facts (registry, base image, package index) are in
# stack.env; the emulator is started here when it does not run yet (state: .state/emulator).
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

# Deploy to the local emulator (the local RunPod): started here unless it already runs.
export RPDEPLOY_EMULATOR_STATE=${RPDEPLOY_EMULATOR_STATE:-$STATE/emulator}
if ! "$RPDEPLOY" emulator status >/dev/null 2>&1; then
	# A free loopback port unless one is asked for: several checkouts may share this machine.
	PORT=${RPDEPLOY_EMULATOR_PORT:-$("${PYTHON:-.venv/bin/python}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
	echo "demo: emulator start (port $PORT)" >&2
	"$RPDEPLOY" emulator start --port "$PORT" >&2
fi
# The worker's S3 credentials: demo placeholders unless set (in CI they come from the
# repository's secrets). The runpod-secret ones become RunPod secrets; apply creates them.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-demo-access-key-id}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-demo-secret-access-key}
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:9000}
echo "demo: plan" >&2
"$RPDEPLOY" plan --target local
echo "demo: apply" >&2
"$RPDEPLOY" apply --target local --wait --timeout 120
