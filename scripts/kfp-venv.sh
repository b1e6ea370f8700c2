#!/usr/bin/env bash
# A cached virtual environment with the real Kubeflow Pipelines SDK and provgraph installed together,
# for the kfp engine's tests (tests/test_pipeline_kfp.py compiles and runs pipelines in it).
#
# Usage: scripts/kfp-venv.sh          build if missing (idempotent), print the venv's python path
#
# kfp stays out of provgraph's lockfile (its dependency tree is large and only this engine needs
# it); the venv lives in ${PROVGRAPH_INFRA_DIR:-.infra}/kfp-<version>-<key>/, keyed by the kfp
# version, the Python version and provgraph's declared dependencies. provgraph is installed from
# this checkout (proving the two co-install); the tests put the checkout's own source first on
# PYTHONPATH, so the code under test is always the current one.
# Env: PROVGRAPH_KFP_VERSION (2.17.3), PROVGRAPH_INFRA_DIR.
set -euo pipefail

SVC=kfp-venv
# shellcheck source-path=SCRIPTDIR source=infra/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra/common.sh"

KFP_VERSION="${PROVGRAPH_KFP_VERSION:-2.17.3}"
UV="$REPO/.tools/bin/uv"
[[ -x "$UV" ]] || UV="$(command -v uv || true)"
[[ -n "$UV" ]] || die "uv not found: run 'make .venv/.synced' first (it installs .tools/bin/uv)"
HOST_PY="$REPO/.venv/bin/python"
[[ -x "$HOST_PY" ]] || HOST_PY="$(command -v "$PYTHON")"
PY_VERSION="$("$HOST_PY" -c 'import platform; print(platform.python_version())')"

KEY="$("$HOST_PY" - "$REPO/pyproject.toml" "$KFP_VERSION" "$PY_VERSION" <<'PY'
import hashlib, json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = {"deps": project["dependencies"], "extras": project["optional-dependencies"], "kfp": sys.argv[2], "py": sys.argv[3]}
print(hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()[:12])
PY
)"
VENV="$INFRA/kfp-$KFP_VERSION-$KEY"

build() {
  [[ -f "$VENV/.complete" ]] && return 0
  rm -rf "$VENV"  # a build that was interrupted leaves no stamp: start over
  log "building $VENV (kfp==$KFP_VERSION + provgraph, python $PY_VERSION)"
  local t0
  t0=$(now)
  "$UV" venv --quiet --python "$HOST_PY" "$VENV" >&2
  # --link-mode=copy: the venv must not share files with uv's cache, which other helpers prune.
  if ! "$UV" pip install --quiet --link-mode=copy --python "$VENV/bin/python" "kfp==$KFP_VERSION" "$REPO" >&2; then
    rm -rf "$VENV"
    die "kfp==$KFP_VERSION and provgraph could not be installed together (see uv's reason above)"
  fi
  "$VENV/bin/python" -c "import kfp, provgraph" || { rm -rf "$VENV"; die "the built venv cannot import kfp and provgraph"; }
  touch "$VENV/.complete"
  log "built in $(elapsed_since "$t0") s"
}

with_lock "$INFRA/kfp-venv.lock" build
echo "$VENV/bin/python"
