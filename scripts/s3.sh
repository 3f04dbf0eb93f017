#!/usr/bin/env bash
# Starts a real S3-compatible server on loopback (versitygw with its posix
# backend) for the S3 tests, installing it with `go install` when missing.
# `start` prints the environment the tests read, for eval:
#   eval "$(scripts/s3.sh start)"
# Usage: scripts/s3.sh start|stop|env
set -euo pipefail
cmd=${1:-start}
root=$(cd "$(dirname "$0")/.." && pwd)
data=${DSPIPE_S3DATA:-$root/.s3data}
port=${DSPIPE_S3PORT:-$(cat "$data.port" 2>/dev/null || echo 27070)}
access=dspipe-test
secret=dspipe-test-secret-key
bin="$(go env GOPATH)/bin/versitygw"

env_out() {
  echo "export DSPIPE_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
  echo "export DSPIPE_TEST_S3_ACCESS_KEY=$access"
  echo "export DSPIPE_TEST_S3_SECRET_KEY=$secret"
}
up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
# mine: the server on the port is the one this checkout started (another
# checkout's server may serve a data directory that no longer exists).
mine() { [ -f "$data.pid" ] && kill -0 "$(cat "$data.pid")" 2>/dev/null; }

case "$cmd" in
env) env_out ;;
stop) [ -f "$data.pid" ] && kill "$(cat "$data.pid")" 2>/dev/null; rm -f "$data.pid" "$data.port" ;;
start)
  if up && ! mine; then
    for p in $(seq $((port + 1)) $((port + 50))); do
      port=$p
      up || break
    done
  fi
  if ! up; then
    [ -x "$bin" ] || GOFLAGS=-mod=mod go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 >&2
    mkdir -p "$data/root" "$data/meta"
    ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" nohup "$bin" --port "127.0.0.1:$port" \
      posix --sidecar "$data/meta" "$data/root" >"$data/server.log" 2>&1 &
    echo $! >"$data.pid"
    echo "$port" >"$data.port"
    for _ in $(seq 1 100); do up && break; sleep 0.1; done
    up || { echo "versitygw did not start; see $data/server.log" >&2; exit 1; }
  fi
  env_out
  ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
