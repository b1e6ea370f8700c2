#!/usr/bin/env bash
# A cached virtual environment with the real MLRun release and provgraph installed together, for the
# MLRun compatibility tests (tests/test_mlrun_compat.py runs the same handlers in it via subprocess).
#
# Usage: scripts/mlrun-venv.sh          build if missing (idempotent), print the venv's python path
#
# The venv lives in ${PROVGRAPH_INFRA_DIR:-.infra}/mlrun-<version>-<key>/, keyed by the MLRun version,
# the Python version and provgraph's declared dependencies, so a change to any of them builds a new
# one. provgraph is installed from this checkout (proving the two co-install); the tests put the
# checkout's own source first on PYTHONPATH, so the code under test is always the current one.
# Env: PROVGRAPH_MLRUN_VERSION (1.12.1), PROVGRAPH_INFRA_DIR.
set -euo pipefail

SVC=mlrun-venv
# shellcheck source-path=SCRIPTDIR source=infra/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra/common.sh"

MLRUN_VERSION="${PROVGRAPH_MLRUN_VERSION:-1.12.1}"
UV="$REPO/.tools/bin/uv"
[[ -x "$UV" ]] || UV="$(command -v uv || true)"
[[ -n "$UV" ]] || die "uv not found: run 'make .venv/.synced' first (it installs .tools/bin/uv)"
HOST_PY="$REPO/.venv/bin/python"
[[ -x "$HOST_PY" ]] || HOST_PY="$(command -v "$PYTHON")"
PY_VERSION="$("$HOST_PY" -c 'import platform; print(platform.python_version())')"

# What the environment depends on: MLRun's version, Python's, and provgraph's [project] table.
KEY="$("$HOST_PY" - "$REPO/pyproject.toml" "$MLRUN_VERSION" "$PY_VERSION" <<'PY'
import hashlib, json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = {"deps": project["dependencies"], "extras": project["optional-dependencies"], "mlrun": sys.argv[2], "py": sys.argv[3]}
print(hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()[:12])
PY
)"
VENV="$INFRA/mlrun-$MLRUN_VERSION-$KEY"

build() {
  [[ -f "$VENV/.complete" ]] && return 0
  local tmp="$VENV"
  rm -rf "$tmp"  # a build that was interrupted leaves no stamp: start over
  log "building $VENV (mlrun==$MLRUN_VERSION + provgraph[pandas,s3], python $PY_VERSION)"
  local t0
  t0=$(now)
  "$UV" venv --quiet --python "$HOST_PY" "$tmp" >&2
  # --link-mode=copy: the venv must not share files with uv's cache, which other helpers prune.
  if ! "$UV" pip install --quiet --link-mode=copy --python "$tmp/bin/python" \
      "mlrun==$MLRUN_VERSION" "$REPO[pandas,s3]" pytest matplotlib >&2; then
    rm -rf "$tmp"
    die "mlrun==$MLRUN_VERSION and provgraph[pandas,s3] could not be installed together (see uv's reason above)"
  fi
  "$tmp/bin/python" -c "import mlrun, provgraph" || { rm -rf "$tmp"; die "the built venv cannot import mlrun and provgraph"; }
  touch "$VENV/.complete"
  log "built in $(elapsed_since "$t0") s"
}

with_lock "$INFRA/mlrun-venv.lock" build
echo "$VENV/bin/python"
