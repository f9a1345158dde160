#!/usr/bin/env bash
# Install the test environment for fdguard.
#   - Debian libgrpc++-dev (1.51.1) + pkg-config   (apt)
#   - target/deps/venv-grpc151      grpcio==1.51.1  (pip)
#   - target/deps/venv-grpc-latest  latest grpcio   (pip)
#   - the real programs the tests run: nginx, nodejs, postgresql-15, redis, curl, wget,
#     golang-go, prometheus, chromium, iproute2, python3-dev (apt)
#   - the findings corpus: target/deps/venv-http (urllib3), venv-grpc185 (grpcio 1.85.3) (pip)
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

make_pip_venv() {  # name  pip-spec  python-expression-printing-the-version
    local name="$1" spec="$2" probe="$3" venv="$DEPS_DIR/$1" stamp="$DEPS_DIR/$1/.fdguard-stamp"
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
    # shellcheck disable=SC2086  # the spec may name several packages
    if ! timeout 1200 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            --only-binary=:all: $spec >&2; then
        fail "dep $name: pip install $spec failed"; return 1
    fi
    local ver
    ver="$(timeout 60 "$venv/bin/python" -c "$probe" 2>/dev/null)"
    if [ -z "$ver" ]; then fail "dep $name: probe '$probe' failed"; return 1; fi
    printf '%s\n%s\n' "$spec" "$ver" > "$stamp"
    log "dep $name: $ver ($venv)"
}

mkdir -p "$DEPS_DIR"
PY="$(find_python || true)"
if [ -n "$PY" ]; then log "dep python: $PY ($("$PY" -c 'import platform;print(platform.python_version())' 2>/dev/null))"
else fail "dep python: python3 NOT FOUND"; fi
make_pip_venv venv-grpc151 "grpcio==1.51.1" 'import grpc; print("grpcio", grpc.__version__)'
make_pip_venv venv-grpc-latest "grpcio" 'import grpc; print("grpcio", grpc.__version__)'

# ---------------------------------------------------------------- python frames (issue 16)
# python3-dev: CPython's headers (internal ones included); a unit test compiles fdguard's
# layout table against them.
apt_install python3-dev
if [ -f /usr/include/python3.11/internal/pycore_frame.h ] || python3-config --includes >/dev/null 2>&1; then
    log "dep python3-dev: $(dpkg-query -W -f='${Version}' python3-dev 2>/dev/null)"
else
    fail "dep python3-dev: CPython headers MISSING"
fi

# ---------------------------------------------------------------- findings corpus (issue 10)
# Real programs the finding tests run under the shim (tests/corpus_*.rs):
#   - Debian: redis-server + redis-tools (redis-benchmark, redis-cli), nodejs, wget, iproute2
#     (tc, ip: the half-open test holds a peer's ACKs back inside a private network namespace)
#   - target/deps/venv-http      urllib3 (a keep-alive pool; also the Python-frames urllib3 test)
#   - target/deps/venv-grpc185   grpcio==1.85.3, pinned: grpc.aio keeps a connection open after
#                                channel.close() while the app holds a call object
#                                (grpc/grpc#42125, still open for this release)
apt_install redis-server redis-tools iproute2 wget
command -v node >/dev/null 2>&1 || apt_install nodejs
for exe in redis-server redis-benchmark redis-cli node wget tc ip unshare; do
    have "$exe" "$(command -v "$exe")" "apt-get install redis-server redis-tools nodejs wget iproute2"
done
make_pip_venv venv-http "urllib3==2.8.0" 'import urllib3; print("urllib3", urllib3.__version__)'
make_pip_venv venv-grpc185 "grpcio==1.85.3" 'import grpc; print("grpcio", grpc.__version__)'

if [ "$FAILED" = 1 ]; then
    log "some dependencies are missing: the tests that need them will fail"
fi
exit 0
