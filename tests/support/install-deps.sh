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
# apt_install PKG...: installs the Debian packages that are missing, in one apt-get call.
# Each block below names its packages and then checks the commands its tests run.
apt_install() {
    local pkg need=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    [ "${#need[@]}" -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        fail "apt-get not available; cannot install ${need[*]}"
        return 0
    fi
    log "apt: installing ${need[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -q >&2 ||
       ! as_root env DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -q --no-install-recommends "${need[@]}" >&2; then
        fail "apt-get install ${need[*]} failed"
    fi
}

# have CMD WHAT HOW: logs CMD's version line (WHAT), or fails with the install hint HOW.
have() {
    if command -v "$1" >/dev/null 2>&1; then log "dep $1: $2"; else fail "dep $1: MISSING ($3)"; fi
}

# ---------------------------------------------------------------- gRPC C++ (core)
apt_install libgrpc++-dev pkg-config
for pkg in libgrpc++-dev pkg-config; do
    v="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)"
    if [ -n "$v" ]; then log "dep $pkg: $v"; else fail "dep $pkg: MISSING"; fi
done
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists grpc++ 2>/dev/null; then
    log "dep pkg-config grpc++: $(pkg-config --modversion grpc++)"
else
    fail "dep pkg-config grpc++: NOT FOUND"
fi
have g++ "$(g++ -dumpversion 2>/dev/null)" "apt-get install g++"

# ---------------------------------------------------------------- fleet (issue 14)
# promtool (Debian's prometheus) checks the metrics files; `go tool pprof` (golang-go) reads
# the pprof export back.
apt_install prometheus golang-go
have promtool "$(promtool --version 2>&1 | head -n1)" "apt-get install prometheus"
if command -v go >/dev/null 2>&1 && timeout 120 go tool pprof -h >/dev/null 2>&1; then
    log "dep go tool pprof: $(go version)"
else
    fail "dep go tool pprof: MISSING (apt-get install golang-go)"
fi

# ---------------------------------------------------------------- inspect, watch, html (issue 13)
# golang-go: a never-preloaded Go program that `fdguard inspect` must see from outside;
# chromium: the HTML timeline opened headless (screenshot, no script errors);
# iproute2: `ss`, the ground truth that sockets in state CLOSE are invisible to it.
apt_install golang-go chromium iproute2
have go "$(go version 2>/dev/null)" "apt-get install golang-go"
have chromium "$(chromium --version 2>/dev/null | tail -n1)" "apt-get install chromium"
have ss "$(ss -V 2>&1 | head -n1)" "apt-get install iproute2"

# ---------------------------------------------------------------- report channel (issue 11)
# Real servers asked for reports through the request channel, and what they do to reports:
# nginx (master + workers as nobody, SIGUSR1 = reopen logs), nodejs (SIGUSR1 = inspector,
# libuv's raw closes), postgresql-15 (a fork-per-connection backend, title over argv[0]),
# redis-server (--daemonize yes), curl (three clean runs say nothing), util-linux (setpriv:
# the cluster runs as postgres).
apt_install nginx nodejs postgresql-15 redis-server curl util-linux
have nginx "$(nginx -v 2>&1 | head -n1)" "apt-get install nginx"
have node "$(node --version 2>/dev/null)" "apt-get install nodejs"
have redis-server "$(redis-server --version 2>/dev/null | head -n1)" "apt-get install redis-server"
have curl "$(curl --version 2>/dev/null | head -n1)" "apt-get install curl"
have setpriv "$(setpriv --version 2>/dev/null | head -n1)" "apt-get install util-linux"
if [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    log "dep postgresql 15: $(/usr/lib/postgresql/15/bin/postgres --version 2>/dev/null)"
else
    fail "dep postgresql 15: MISSING (apt-get install postgresql-15)"
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    fail "dep postgres user: MISSING (the postgresql-common package creates it)"
fi

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

# ---------------------------------------------------------------- python frames (issue 16)
# - python3-dev: CPython's headers (internal ones included); a unit test compiles fdguard's
#   layout table against them.
# - target/python-deps/venv-urllib3: urllib3 for the urllib3 pool scenario (its own venv, so
#   the gRPC venvs stay exactly what their stamps say).
if ! dpkg-query -W -f='${Status}' python3-dev 2>/dev/null | grep -q "install ok installed"; then
    if ! as_root env DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -q \
            --no-install-recommends python3-dev >&2; then
        fail "apt-get install python3-dev failed"
    fi
fi
if [ -f /usr/include/python3.11/internal/pycore_frame.h ] || python3-config --includes >/dev/null 2>&1; then
    log "dep python3-dev: $(dpkg-query -W -f='${Version}' python3-dev 2>/dev/null)"
else
    fail "dep python3-dev: CPython headers MISSING"
fi
URLLIB3_SPEC="urllib3==2.8.0"
URLLIB3_VENV="$REPO_ROOT/target/python-deps/venv-urllib3"
if [ -f "$URLLIB3_VENV/.fdguard-stamp" ] && [ "$(head -n1 "$URLLIB3_VENV/.fdguard-stamp")" = "$URLLIB3_SPEC" ] \
        && [ -x "$URLLIB3_VENV/bin/python" ]; then
    log "dep venv-urllib3: $URLLIB3_SPEC (cached, $URLLIB3_VENV)"
elif [ -z "$PY" ]; then
    fail "dep venv-urllib3: no python3 interpreter"
else
    log "dep venv-urllib3: creating venv with $URLLIB3_SPEC"
    rm -rf "$URLLIB3_VENV"
    mkdir -p "$(dirname "$URLLIB3_VENV")"
    if timeout 300 "$PY" -m venv "$URLLIB3_VENV" >&2 &&
       timeout 600 "$URLLIB3_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            "$URLLIB3_SPEC" >&2 &&
       timeout 60 "$URLLIB3_VENV/bin/python" -c 'import urllib3' >&2; then
        printf '%s\n' "$URLLIB3_SPEC" > "$URLLIB3_VENV/.fdguard-stamp"
        log "dep venv-urllib3: $URLLIB3_SPEC ($URLLIB3_VENV)"
    else
        fail "dep venv-urllib3: pip install $URLLIB3_SPEC failed"
    fi
fi

if [ "$FAILED" = 1 ]; then
    log "some dependencies are missing; gRPC tests will be skipped"
fi
exit 0
