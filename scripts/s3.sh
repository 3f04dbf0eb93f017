#!/usr/bin/env bash
# Starts a real S3-compatible server on loopback (versitygw with its posix
# backend) for the S3 tests, installing it with `go install` when missing.
# `start` prints the environment the tests read, for eval:
#   eval "$(scripts/s3.sh start)"
# Usage: scripts/s3.sh start|stop|env
set -euo pipefail
cmd=${1:-start}
root=$(cd "$(dirname "$0")/.." && pwd)
port=${DSPIPE_S3PORT:-57070}
data=${DSPIPE_S3DATA:-$root/.s3data}
access=dspipe-test
secret=dspipe-test-secret-key
bin="$(go env GOPATH)/bin/versitygw"

env_out() {
  echo "export DSPIPE_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
  echo "export DSPIPE_TEST_S3_ACCESS_KEY=$access"
  echo "export DSPIPE_TEST_S3_SECRET_KEY=$secret"
}
up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

case "$cmd" in
env) env_out ;;
stop) [ -f "$data.pid" ] && kill "$(cat "$data.pid")" 2>/dev/null; rm -f "$data.pid" ;;
start)
  if ! up; then
    [ -x "$bin" ] || GOFLAGS=-mod=mod go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 >&2
    mkdir -p "$data/root" "$data/meta"
    ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" nohup "$bin" --port "127.0.0.1:$port" \
      posix --sidecar "$data/meta" "$data/root" >"$data/server.log" 2>&1 &
    echo $! >"$data.pid"
    for _ in $(seq 1 100); do up && break; sleep 0.1; done
    up || { echo "versitygw did not start; see $data/server.log" >&2; exit 1; }
  fi
  env_out
  ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
