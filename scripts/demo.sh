#!/usr/bin/env bash
# make demo: the whole release of the reference worker (rpdeploy.yaml, worker/: speech to text on
# CPU with pocketsphinx) against the local stack: `rpdeploy release --target local --promote`
# renders, builds and pushes the slim image to the local registry, deploys it by digest to the
# emulator's staging endpoint, waits for the rollout, runs the validation cases (.runpod/tests.json
# and rpdeploy.yaml's tests.cases) as real jobs, rolls back automatically on failure, and otherwise does the same for production. A second run is a no-op deploy (same
# digest, 0 writes, no new release) that validates again. `make demo` brings the stack up first
# (scripts/stack.sh up), whose facts (registry, base image, package index, S3) are in stack.env;
# the emulator is started here when it does not run yet (state: .state/emulator) and left running.
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
PYTHON=${PYTHON:-.venv/bin/python}
RESULT=$STATE/demo-release.json

export RPDEPLOY_EMULATOR_STATE=${RPDEPLOY_EMULATOR_STATE:-$STATE/emulator}
if ! "$RPDEPLOY" emulator status >/dev/null 2>&1; then
	# A free loopback port unless one is asked for: several checkouts may share this machine.
	PORT=${RPDEPLOY_EMULATOR_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
	echo "demo: emulator start (port $PORT)" >&2
	"$RPDEPLOY" emulator start --port "$PORT" >&2
fi

# The worker's S3 credentials (runpod-secret: apply creates them as RunPod secrets) come from
# stack.env: the stack's S3 server, where the slim runtime keeps its environment archives.
# The first cold start installs worker/requirements.txt (runpod, pocketsphinx and what they need,
# about 250 MB) from the stack's index onto the endpoint's network volume (minutes on a small
# machine); later ones reuse it, or download the archive the first one uploaded to S3.
status=0
"$RPDEPLOY" release --target local --promote --output json >"$RESULT" || status=$?

"$PYTHON" - "$RESULT" "$RPDEPLOY" <<'PY'
import json, sys
envelope = json.load(open(sys.argv[1]))  # README, "JSON output"
rpdeploy = sys.argv[2]
if envelope["status"] == "error":
    sys.exit(f"demo: release stopped: {envelope['error']['message']}")
data = envelope["data"]
print(f"\nimage: {data['image']}")
for step in data["steps"]:
    print(f"  {step['step']:<28} {step['seconds']:7.1f} s  {step['detail']}")
ids = {}
for stage in data["environments"]:
    deploy, report = stage["deploy"], stage["validation"]
    ids[stage["env"]] = deploy["endpoint_id"]
    what = "no change" if not deploy["changed"] else f"{deploy['action']}d"
    calls = deploy["api_calls"]
    print(f"\n{stage['env']}: {deploy['endpoint_id']}, release v{deploy['release']['version']} "
          f"({what}; API calls: {calls['reads']} reads, {calls['writes']} writes)")
    if report is not None:
        print(f"  {'case':<16} {'result':<6} {'status':<10} {'delay ms':>9} {'exec ms':>8} {'latency ms':>11}  cold")
        for t in report["tests"]:
            cells = [t.get(k) if t.get(k) is not None else "-" for k in ("delay_ms", "execution_ms", "latency_ms")]
            print(f"  {t['name']:<16} {'pass' if t['passed'] else 'FAIL':<6} {t['status']:<10} "
                  f"{cells[0]:>9} {cells[1]:>8} {cells[2]:>11}  {'cold' if t['cold'] else ''}")
    if stage["rollback"]:
        print(f"  FAILED: rolled back to release v{stage['rollback']['to_version']}")
    elif not stage["ok"]:
        print(f"  FAILED: {stage['rollout_error'] or 'validation failed'}; {stage['no_rollback']}")
print(f"\nrelease: {'passed' if data['ok'] else 'FAILED'}")
print("\nThe emulator keeps running. To use the endpoints:")
print('  eval "$(' + rpdeploy + ' emulator env)"')
for env, endpoint in ids.items():
    print(f"  {env}: {endpoint}")
if ids:
    endpoint = ids.get("production") or next(iter(ids.values()))
    # A real transcription: a committed clip (any 16 kHz 16-bit mono WAV works) and a grammar.
    print("Transcribe a clip (the runpod SDK, as any RunPod client; worker/README.md has the input):")
    # runpod 1.12 reads its key from ~/.runpod/config.toml, not from the environment: set it.
    print("  .venv/bin/python -c 'import base64, os, runpod; runpod.api_key = os.environ[\"RUNPOD_API_KEY\"]; "
          "audio = base64.b64encode(open(\".runpod/clips/kitchen.wav\", \"rb\").read()).decode(); "
          f"print(runpod.Endpoint(\"{endpoint}\").run_sync("
          "{\"audio_base64\": audio, \"grammar\": \"#JSGF V1.0; grammar g; "
          "public <c> = (turn on | turn off) the (kitchen | hall) lights;\"}, timeout=600))'")
    print("  or from the stack's S3: {\"s3\": {\"bucket\": \"rpdeploy-envs\", \"key\": \"samples/garage.wav\"}, "
          "\"grammar\": \"#JSGF V1.0; grammar g; public <c> = (open | close) the garage door;\"}")
print(f"Stop everything: {rpdeploy} emulator stop && scripts/stack.sh down")
PY
exit "$status"
