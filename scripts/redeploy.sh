#!/usr/bin/env bash
# Redeploy a known image to one environment from a laptop or from CI (.github/workflows/redeploy.yml):
# check the variables it needs, show the plan (preflight, cost), ask, then `rpdeploy release --image`:
# apply and wait for the rollout, validate, and when the rollout or the validation fails roll back to
# the release that ran before (an endpoint this run created is scaled to zero workers instead).
# Thin over the CLI: every step is an `rpdeploy` command; this script only orders them.
#
#   scripts/redeploy.sh --env ENV [--image REF] [--target runpod|local] [--config FILE]
#                       [--skip-validation] [--timeout S] [--yes]
#
# Without --image the image is rebuilt from the checkout and pushed (`rpdeploy push --build`).
# --timeout: seconds to wait for the rollout (default 600); --yes: no question (needed without a
# terminal); --skip-validation: the rollout alone decides. Options also take the --name=VALUE form.
# Exit codes: 0 deployed and validated; 1 the rollout failed or timed out or validation failed
# (rolled back, or a new endpoint scaled to zero), a preflight failed or the confirmation was
# refused; 2 bad usage or variables missing (all named, before any call); 3 RunPod API or registry
# unreachable. Other codes are rpdeploy's own.
set -euo pipefail

RPDEPLOY=${RPDEPLOY:-rpdeploy}
PYTHON=${PYTHON:-python3}

usage() { # --help: this header (what it does, the synopsis, the exit codes) on stdout, exit 0
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
}

die() { # die CODE MESSAGE: one line on stderr, then exit CODE
	echo "redeploy: $2" >&2
	exit "$1"
}

env_name="" image="" target=runpod config=rpdeploy.yaml skip_validation=false yes=false timeout=600
while [ $# -gt 0 ]; do
	case "$1" in
	--env=* | --image=* | --target=* | --config=* | --timeout=*)
		# --name=VALUE is --name VALUE (an empty VALUE is refused below like a missing one).
		set -- "${1%%=*}" "${1#*=}" "${@:2}"
		[ -n "$2" ] || die 2 "$1 needs a value (see --help)"
		;;
	esac
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
# Seconds, positive (rpdeploy's --timeout): refused here, before the plan and the question.
[[ "$timeout" =~ ^[0-9]+([.][0-9]+)?$ && ! "$timeout" =~ ^0+([.]0+)?$ ]] ||
	die 2 "--timeout must be a positive number of seconds, not '$timeout'"
command -v "$RPDEPLOY" >/dev/null || die 2 "$RPDEPLOY not found (pip install rpdeploy, or set RPDEPLOY)"

scope=(--config "$config" --env "$env_name" --target "$target")

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

if [ -z "$image" ]; then
	echo "redeploy: no --image: building and pushing the checkout" >&2
	pushed=$("$RPDEPLOY" push --build --config "$config" --env "$env_name" -o json) || exit
	image=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["data"]["image"])' <<<"$pushed")
fi

# Exit 1 is a failed preflight (the plan, FAIL lines included, is printed above); 2 and 3 are
# rpdeploy's own error line. Either way nothing was applied, and the last line says so.
code=0
"$RPDEPLOY" plan "${scope[@]}" --image "$image" || code=$?
[ "$code" -eq 0 ] || die "$code" "not applied: the plan for $env_name failed (exit $code), see above"
if [ "$yes" != true ]; then
	[ -t 0 ] || die 2 "not confirmed: pass --yes when there is no terminal"
	# End of input (Ctrl-D) is no answer: refused like "n", and said.
	# (The newline ends the prompt's line, which Ctrl-D leaves open.)
	read -r -p "Apply this plan to $env_name? [y/N] " answer || { echo >&2 && die 1 "not applied (no answer)"; }
	case "$answer" in y | Y | yes) ;; *) die 1 "not applied" ;; esac
fi

# The gate is rpdeploy's (`release --image`: the same code as release.yml): apply, wait for the
# rollout, validate; when the rollout or the validation fails, roll back to the release this
# apply replaced, or scale an endpoint it created to zero workers; the stage's verdict says which.
gate=(--config "$config" --env-first "$env_name" --target "$target" --image "$image" --timeout "$timeout")
[ "$skip_validation" != true ] || gate+=(--skip-validation)
"$RPDEPLOY" release "${gate[@]}" || code=$?
[ "$code" -eq 0 ] || die "$code" "redeploy to $env_name failed (exit $code): see the verdict above"
