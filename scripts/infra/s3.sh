#!/usr/bin/env bash
# S3-compatible test endpoint: moto server (PyPI `moto[server]`), loopback only, in-memory state.
#
# Usage: scripts/infra/s3.sh {start|stop|status|env}
#   start   start `${PYTHON} -m moto.server` on 127.0.0.1 and wait until it answers HTTP;
#           no-op when already running and healthy
#   stop    SIGTERM, SIGKILL after 30 s (all buckets/objects are lost: moto keeps them in memory)
#   status  exit 0 if running and answering, 3 otherwise
#   env     print the endpoint and dummy AWS credential exports
# State between tests can be wiped with: POST $PROVGRAPH_S3_ENDPOINT_URL/moto-api/reset
#
# Env: PROVGRAPH_S3_PORT (15555), PROVGRAPH_S3_START_TIMEOUT (60), PROVGRAPH_INFRA_DIR, PYTHON
#      (an interpreter with `moto[server]` installed).
set -euo pipefail

SVC=s3
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${PROVGRAPH_S3_PORT:-15555}"
START_TIMEOUT="${PROVGRAPH_S3_START_TIMEOUT:-60}"
URL="http://127.0.0.1:$PORT"

RUN="$INFRA/run/s3"
LOGFILE="$RUN/moto.log"
PIDFILE="$RUN/moto.pid"

usage() {
  echo "usage: $0 {start|stop|status|env}" >&2
  exit 2
}

# Any HTTP answer from moto's management API means the server is up.
probe() {
  "$PYTHON" - "$URL" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/moto-api/data.json", timeout=3) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

_start_locked() {
  local pid t0
  if pid="$(pid_of "$PIDFILE")"; then
    if probe >/dev/null 2>&1; then
      log "already running (pid $pid) on $URL"
      return 0
    fi
    log "pid $pid is running but not answering yet; waiting"
    t0="$(now)"
    wait_until "$START_TIMEOUT" "moto server on $URL" "$pid" "$LOGFILE" probe || exit 1
    log "ready on $URL in $(elapsed_since "$t0")s (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE" "$PIDFILE.start"
  if port_in_use "$PORT"; then
    die "port 127.0.0.1:$PORT is already in use by another process (set PROVGRAPH_S3_PORT)"
  fi
  python_has moto.server ||
    die "'$PYTHON' cannot import moto.server; install it (pip install 'moto[server]') or set PYTHON"
  python_has flask || die "'$PYTHON' lacks flask; install 'moto[server]' (with the [server] extra)"
  mkdir -p "$RUN"
  t0="$(now)"
  printf '===== %s starting moto server =====\n' "$(date -Is)" >>"$LOGFILE"
  pid="$(start_bg "$PIDFILE" "$LOGFILE" "$PYTHON" -m moto.server -H 127.0.0.1 -p "$PORT")"
  if ! wait_until "$START_TIMEOUT" "moto server on $URL" "$pid" "$LOGFILE" probe; then
    stop_pidfile "$PIDFILE" 10 || true
    exit 1
  fi
  log "ready on $URL in $(elapsed_since "$t0")s (pid $pid, rss $(rss_mib "$pid") MiB)"
}

cmd_start() { service_start; }
cmd_stop() { service_stop; }
cmd_status() { service_status "$URL"; }

cmd_env() {
  printf 'export PROVGRAPH_S3_ENDPOINT_URL=%s\n' "$URL"
  printf 'export AWS_ACCESS_KEY_ID=testing\n'
  printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
  printf 'export AWS_DEFAULT_REGION=us-east-1\n'
}

[[ $# -eq 1 ]] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
