#!/usr/bin/env bash
# Install the gRPC test environment for fdguard.
#   - Debian libgrpc++-dev (1.51.1) + pkg-config   (apt)
#   - target/deps/venv-grpc151      grpcio==1.51.1  (pip)
#   - target/deps/venv-grpc-latest  latest grpcio   (pip)
# Idempotent: stamp files make reruns skip pip; apt is skipped when installed.
# Under CI=true every failure is fatal; otherwise warn and exit 0.
set -u

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
DEPS_DIR="$REPO_ROOT/target/deps"
STRICT=0
[ "${CI:-}" = "true" ] && STRICT=1
FAILED=0

log()  { echo "install-deps: $*" >&2; }
fail() {
    FAILED=1
    if [ "$STRICT" = 1 ]; then
        log "ERROR: $*"
        exit 1
    fi
    log "WARNING: $*"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else return 1; fi
}

# ---------------------------------------------------------------- apt
need_apt=()
for pkg in libgrpc++-dev pkg-config; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        :
    else
        need_apt+=("$pkg")
    fi
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        fail "apt-get not available; cannot install ${need_apt[*]}"
    else
        log "apt: installing ${need_apt[*]}"
        if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -q >&2 ||
           ! as_root env DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2; then
            fail "apt-get install ${need_apt[*]} failed"
        fi
    fi
fi
for pkg in libgrpc++-dev pkg-config; do
    v="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)"
    if [ -n "$v" ]; then log "dep $pkg: $v"; else fail "dep $pkg: MISSING"; fi
done
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists grpc++ 2>/dev/null; then
    log "dep pkg-config grpc++: $(pkg-config --modversion grpc++)"
else
    fail "dep pkg-config grpc++: NOT FOUND"
fi
if command -v g++ >/dev/null 2>&1; then
    log "dep g++: $(g++ -dumpversion)"
else
    fail "dep g++: MISSING (apt-get install g++)"
fi

# ---------------------------------------------------------------- inspect, watch, html (issue 13)
# golang-go: a never-preloaded Go program that `fdguard inspect` must see from outside;
# chromium: the HTML timeline opened headless (screenshot, no script errors);
# iproute2: `ss`, the ground truth that sockets in state CLOSE are invisible to it.
inspect_pkgs=(golang-go chromium iproute2)
need_inspect=()
for pkg in "${inspect_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need_inspect+=("$pkg")
    fi
done
if [ "${#need_inspect[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        fail "apt-get not available; cannot install ${need_inspect[*]}"
    else
        log "apt: installing ${need_inspect[*]}"
        if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -q >&2 ||
           ! as_root env DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -q --no-install-recommends "${need_inspect[@]}" >&2; then
            fail "apt-get install ${need_inspect[*]} failed"
        fi
    fi
fi
if command -v go >/dev/null 2>&1; then log "dep go: $(go version)"; else fail "dep go: MISSING (apt-get install golang-go)"; fi
if command -v chromium >/dev/null 2>&1; then
    log "dep chromium: $(chromium --version 2>/dev/null | tail -n1)"
else
    fail "dep chromium: MISSING (apt-get install chromium)"
fi
if command -v ss >/dev/null 2>&1; then log "dep ss: $(ss -V 2>&1 | head -n1)"; else fail "dep ss: MISSING (apt-get install iproute2)"; fi
# ---------------------------------------------------------------- end of issue 13 block

# ---------------------------------------------------------------- python
# python3 may be a pyenv shim/wrapper; resolve the real interpreter once.
find_python() {
    local cand exe
    for cand in "${FDGUARD_PYTHON:-}" python3 python; do
        [ -n "$cand" ] || continue
        command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ] || continue
        exe="$(timeout 60 "$cand" -c 'import sys; print(sys.executable)' 2>/dev/null | tail -n1)"
        if [ -n "$exe" ] && [ -x "$exe" ]; then echo "$exe"; return 0; fi
    done
    return 1
}

make_venv() {  # name  pip-spec
    local name="$1" spec="$2" venv="$DEPS_DIR/$1" stamp="$DEPS_DIR/$1/.fdguard-stamp"
    if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$spec" ] && [ -x "$venv/bin/python" ]; then
        log "dep $name: $(sed -n 2p "$stamp") (cached, $venv)"
        return 0
    fi
    if [ -z "$PY" ]; then fail "dep $name: no python3 interpreter"; return 1; fi
    log "dep $name: creating venv with $spec"
    rm -rf "$venv"
    if ! timeout 300 "$PY" -m venv "$venv" >&2; then
        fail "dep $name: python -m venv failed (apt-get install python3-venv?)"; return 1
    fi
    if ! timeout 1200 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            --only-binary=grpcio "$spec" >&2; then
        fail "dep $name: pip install $spec failed"; return 1
    fi
    local ver
    ver="$(timeout 60 "$venv/bin/python" -c 'import grpc; print(grpc.__version__)' 2>/dev/null)"
    if [ -z "$ver" ]; then fail "dep $name: 'import grpc' failed"; return 1; fi
    printf '%s\ngrpcio %s\n' "$spec" "$ver" > "$stamp"
    log "dep $name: grpcio $ver ($venv)"
}

mkdir -p "$DEPS_DIR"
PY="$(find_python || true)"
if [ -n "$PY" ]; then log "dep python: $PY ($("$PY" -c 'import platform;print(platform.python_version())' 2>/dev/null))"
else fail "dep python: python3 NOT FOUND"; fi
make_venv venv-grpc151 "grpcio==1.51.1"
make_venv venv-grpc-latest "grpcio"

if [ "$FAILED" = 1 ]; then
    log "some dependencies are missing; gRPC tests will be skipped"
fi
exit 0
