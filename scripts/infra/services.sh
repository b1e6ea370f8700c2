#!/usr/bin/env bash
# Run several test services at once via their per-service scripts.
#
# Usage: scripts/infra/services.sh {up|down|status|env} [svc ...]
#   svc: kafka neo4j s3 (the default set), or k8s when scripts/infra/k8s.sh exists
#   up      <svc>.sh start for each, in order; stops at the first failure (exit 1)
#   down    <svc>.sh stop for each, in reverse order; carries on past failures
#   status  <svc>.sh status for each; exit 0 only if all are running and answering
#   env     <svc>.sh env for each, e.g.  eval "$(scripts/infra/services.sh env)"
set -euo pipefail

SVC=services
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEFAULT_SERVICES=(kafka neo4j s3)

usage() {
  echo "usage: $0 {up|down|status|env} [kafka|neo4j|s3|k8s ...]  (default: ${DEFAULT_SERVICES[*]})" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
action="$1"
shift
services=("$@")
[[ ${#services[@]} -gt 0 ]] || services=("${DEFAULT_SERVICES[@]}")

for s in "${services[@]}"; do
  case "$s" in
    kafka | neo4j | s3 | k8s) ;;
    *) die "unknown service '$s' (known: kafka neo4j s3 k8s)" ;;
  esac
  [[ -f "$INFRA_SCRIPTS/$s.sh" ]] || die "no script for service '$s' ($INFRA_SCRIPTS/$s.sh missing)"
done

run_svc() { bash "$INFRA_SCRIPTS/$1.sh" "$2"; }

case "$action" in
  up)
    t0="$(now)"
    for s in "${services[@]}"; do
      if ! run_svc "$s" start; then
        die "'$s' failed to start; services started before it are still running (use: $0 down)"
      fi
    done
    log "up: ${services[*]} in $(elapsed_since "$t0")s"
    ;;
  down)
    rc=0
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do
      run_svc "${services[i]}" stop || rc=1
    done
    exit "$rc"
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do
      run_svc "$s" status || rc=3
    done
    exit "$rc"
    ;;
  env)
    for s in "${services[@]}"; do
      run_svc "$s" env
    done
    ;;
  *) usage ;;
esac
