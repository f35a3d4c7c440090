#!/usr/bin/env bash
# Redeploy a known image to one environment from a laptop or from CI (.github/workflows/redeploy.yml):
# check the variables it needs, show the plan (preflight, cost), ask, apply and wait for the rollout,
# validate, and roll back to the release that ran before when validation fails.
# Thin over the CLI: every step is an `rpdeploy` command; this script only orders them.
#
#   scripts/redeploy.sh --env ENV [--image REF] [--target runpod|local] [--config FILE]
#                       [--skip-validation] [--timeout S] [--yes]
#
# Without --image the image is rebuilt from the checkout and pushed (`rpdeploy push --build`).
# Exit codes: 0 deployed and validated; 1 validation failed (rolled back), a preflight failed, the
# rollout timed out or the confirmation was refused; 2 bad usage or variables missing (all named,
# before any call); 3 RunPod API or registry unreachable. Other codes are rpdeploy's own.
set -euo pipefail

RPDEPLOY=${RPDEPLOY:-rpdeploy}
PYTHON=${PYTHON:-python3}

usage() {
	sed -n '7,8p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
	exit 2
}

die() { # die CODE MESSAGE: one line on stderr, then exit CODE
	echo "redeploy: $2" >&2
	exit "$1"
}

env_name="" image="" target=runpod config=rpdeploy.yaml skip_validation=false yes=false timeout=600
while [ $# -gt 0 ]; do
	case "$1" in
	--env | --image | --target | --config | --timeout)
		# An option that takes a value must have one (not the end of the line, not another option).
		[ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || die 2 "$1 needs a value (see --help)"
		;;
	esac
	case "$1" in
	--env) env_name=$2 && shift ;;
	--image) image=$2 && shift ;;
	--target) target=$2 && shift ;;
	--config) config=$2 && shift ;;
	--timeout) timeout=$2 && shift ;;
	--skip-validation) skip_validation=true ;;
	--yes) yes=true ;;
	-h | --help) usage ;;
	*) die 2 "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
[ -n "$env_name" ] || die 2 "--env is required (e.g. --env staging)"
case "$target" in runpod | local) ;; *) die 2 "--target must be runpod or local" ;; esac
command -v "$RPDEPLOY" >/dev/null || die 2 "$RPDEPLOY not found (pip install rpdeploy, or set RPDEPLOY)"

scope=(--config "$config" --env "$env_name" --target "$target")
image_args=()
[ -z "$image" ] || image_args=(--image "$image")

# Every variable the deploy reads, checked before any call: the API key (RunPod target), each
# secret's variable (inline values go into the endpoint env; runpod-secret values are synced, as
# `rpdeploy secrets sync` requires them) and the registry credential's variables.
resolved=$("$RPDEPLOY" config show --config "$config" --env "$env_name" -o json) || exit
required=$("$PYTHON" -c '
import json, sys
config = json.load(sys.stdin)["data"]["config"]
names = [s["from_env"] or s["name"] for s in config.get("secrets") or []]
auth = config["image"].get("registry_auth") or {}
names += [auth[k] for k in ("username_env", "password_env") if k in auth]
print(" ".join(names))
' <<<"$resolved")
[ "$target" = local ] || required="RUNPOD_API_KEY $required"
missing=()
for name in $required; do
	[ -n "${!name:-}" ] || missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] || die 2 "set these variables first: ${missing[*]}"

version() { # the endpoint's current release version, empty when it does not exist yet
	"$RPDEPLOY" releases "${scope[@]}" -o json 2>/dev/null |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["data"]["version"] or "")' 2>/dev/null || true
}

if [ -z "$image" ]; then
	echo "redeploy: no --image: building and pushing the checkout" >&2
	"$RPDEPLOY" push --build --config "$config" --env "$env_name"
fi

"$RPDEPLOY" plan "${scope[@]}" "${image_args[@]}"
if [ "$yes" != true ]; then
	[ -t 0 ] || die 2 "not confirmed: pass --yes when there is no terminal"
	read -r -p "Apply this plan to $env_name? [y/N] " answer
	case "$answer" in y | Y | yes) ;; *) die 1 "not applied" ;; esac
fi

before=$(version)
"$RPDEPLOY" apply "${scope[@]}" "${image_args[@]}" --wait --timeout "$timeout"
if [ "$skip_validation" = true ]; then
	echo "redeploy: validation skipped (--skip-validation)" >&2
	exit 0
fi
if "$RPDEPLOY" validate "${scope[@]}"; then
	exit 0
fi
after=$(version)
if [ -z "$before" ]; then
	die 1 "validation failed; the endpoint is new, so there is no earlier release to roll back to"
fi
if [ "$after" = "$before" ]; then
	die 1 "validation failed; this redeploy made no new release (v$before), nothing to roll back"
fi
echo "redeploy: validation failed: rolling back to release v$before" >&2
"$RPDEPLOY" rollback "${scope[@]}" --to "$before" --wait --timeout "$timeout"
die 1 "validation failed; rolled back to release v$before"
