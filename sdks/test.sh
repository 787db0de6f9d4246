#!/usr/bin/env bash
# Runs both SDK suites against the maestro binary of this checkout: the Python suite
# (pytest against a real `maestro serve`, the examples, mypy --strict) and the Go suite
# (gofmt, go vet, go build, go test against a real `maestro serve`, the examples).
# Installs what is missing: golang-go via apt-get, a venv in sdks/python/.venv with the
# package and its test extras. MAESTRO_BIN overrides the binary (default
# target/debug/maestro; run `cargo build` first). Exits nonzero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${MAESTRO_BIN:-$ROOT/target/debug/maestro}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ ! -x "$BIN" ]; then
    echo "sdks/test.sh: no maestro binary at $BIN (run cargo build, or set MAESTRO_BIN)" >&2
    exit 2
fi
export MAESTRO_BIN=$BIN
unset MAESTRO_URL MAESTRO_TOKEN MAESTRO_CONFIG

step() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- tools -------------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    step "installing golang-go"
    as_root apt-get install -y golang-go || { as_root apt-get update && as_root apt-get install -y golang-go; }
fi
PY=$ROOT/sdks/python/.venv/bin/python
STAMP=$ROOT/sdks/python/.venv/.maestro-sdk-installed
WANT=$(sha256sum "$ROOT/sdks/python/pyproject.toml" | cut -d' ' -f1)
if [ ! -x "$PY" ]; then
    step "creating sdks/python/.venv"
    python3 -m venv "$ROOT/sdks/python/.venv"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    step "installing the Python SDK with its test extras"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -e "$ROOT/sdks/python[test]"
    echo "$WANT" > "$STAMP"
fi

# --- Python ------------------------------------------------------------------------------
start=$SECONDS
step "python: pytest (conformance, differential, client, cli, examples)"
(cd "$ROOT/sdks/python" && "$PY" -m pytest -q -p no:cacheprovider)
step "python: mypy --strict"
(cd "$ROOT/sdks/python" && "$PY" -m mypy src tests examples)
py_time=$((SECONDS - start))

# --- Go ----------------------------------------------------------------------------------
start=$SECONDS
export GOFLAGS=-mod=mod GOPROXY=off
cd "$ROOT/sdks/go"
step "go: gofmt, vet, build"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
    echo "gofmt: not formatted: $unformatted" >&2
    exit 1
fi
go vet ./...
go build ./...
step "go: test (conformance, differential, client, examples)"
go test -count=1 ./...
go_time=$((SECONDS - start))

printf '\nsdks/test.sh: all green (python %ss, go %ss)\n' "$py_time" "$go_time"
