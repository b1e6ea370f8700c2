#!/usr/bin/env bash
# Build (once) the virtualenv of a third-party OpenLineage producer that the producer fixtures run
# (tests/producers/): those tools pin versions of their own that cannot share provgraph's dev
# environment, so each lives in a cached venv under $PROVGRAPH_INFRA_DIR (default .infra/).
#
#   scripts/ol-producers.sh venv dbt       # prints the venv's bin/ directory (built if missing)
#   scripts/ol-producers.sh venv airflow
#
# Idempotent: a venv is keyed by a hash of its pinned requirements and marked complete only after
# a successful install (a stamp file), so an interrupted build is redone and a warm call costs ms.
# Needs uv (./.tools/bin/uv or on PATH) and the package index; fails with one clear line otherwise.
set -euo pipefail
SVC=ol-producers
# shellcheck source=infra/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra/common.sh"

# Pins: dbt-core 1.11+ pulls a parser wheel from outside the package index, so 1.10 it is; Airflow
# 2.10's ObjectStoragePath needs universal-pathlib 0.2.2 (its own constraints file pins it).
requirements() {
  case "$1" in
    dbt) printf '%s\n' "openlineage-dbt==1.54.0" "dbt-core==1.10.23" "dbt-duckdb==1.10.1" ;;
    airflow) printf '%s\n' "apache-airflow==2.10.5" "apache-airflow-providers-openlineage==2.8.0" \
      "apache-airflow-providers-common-io==1.6.5" "apache-airflow-providers-common-compat==1.9.0" \
      "openlineage-python==1.54.0" "universal-pathlib==0.2.2" ;;
    *) die "unknown producer '$1' (known: dbt, airflow)" ;;
  esac
}

venv() {
  local name="$1" reqs key dir uv
  reqs="$(requirements "$name")"
  key="$(printf '%s' "$reqs" | sha256sum | cut -c1-12)"
  dir="$INFRA/ol-producers/$name-$key"
  if [[ ! -f "$dir/.complete" ]]; then
    uv="$(command -v "$REPO/.tools/bin/uv" || command -v uv || true)"
    [[ -n "$uv" ]] || die "uv not found (run 'make .venv/.synced' first, or install uv)"
    with_lock "$INFRA/ol-producers.lock" bash -c '
      set -euo pipefail
      dir="$1"; uv="$2"; reqs="$3"
      [[ -f "$dir/.complete" ]] && exit 0
      rm -rf "$dir"
      mkdir -p "$(dirname "$dir")"
      "$uv" venv -q --python 3.11 "$dir" >&2
      # shellcheck disable=SC2086
      VIRTUAL_ENV="$dir" "$uv" pip install -q $reqs >&2
      touch "$dir/.complete"
    ' _ "$dir" "$uv" "$reqs" || die "installing $name ($(echo "$reqs" | tr '\n' ' ')) into $dir failed (see above)"
    log "built $dir"
  fi
  printf '%s\n' "$dir/bin"
}

case "${1:-}" in
  venv) venv "${2:?usage: $0 venv NAME}" ;;
  *) die "usage: $0 venv NAME" ;;
esac
