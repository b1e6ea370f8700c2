#!/usr/bin/env bash
# The browser for the web UI tests: the distribution's Chromium and ChromeDriver (Debian packages
# `chromium`, `chromium-driver`), never a browser download. Idempotent: a no-op when both are present.
#
# Usage: scripts/infra/chromium.sh [ensure|path]
#   ensure  install chromium + chromium-driver with apt-get when missing (needs root); fail with one
#           clear line when that is impossible
#   path    print the browser's path (exit 3 when it is not installed)
set -euo pipefail

SVC=chromium
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BROWSER=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

installed() { [[ -x "$BROWSER" && -x "$DRIVER" ]]; }

do_install() {
  installed && return 0
  command -v apt-get >/dev/null 2>&1 || die "$BROWSER is missing and there is no apt-get: install the distribution's chromium and chromium-driver packages"
  [[ "$(id -u)" == 0 ]] || die "$BROWSER is missing: run 'sudo apt-get install -y chromium chromium-driver' (or this script as root)"
  local start
  start="$(now)"
  log "installing chromium and chromium-driver with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$INFRA/chromium-apt.log" 2>&1 || { log_tail "$INFRA/chromium-apt.log"; die "apt-get update failed"; }
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >>"$INFRA/chromium-apt.log" 2>&1 \
    || { log_tail "$INFRA/chromium-apt.log"; die "apt-get install chromium chromium-driver failed"; }
  installed || die "apt-get finished but $BROWSER or $DRIVER is still missing"
  log "installed $("$BROWSER" --version 2>/dev/null) in $(elapsed_since "$start")s"
}

case "${1:-ensure}" in
  ensure) with_lock "$INFRA/chromium.lock" do_install ;;
  path) installed && echo "$BROWSER" || exit 3 ;;
  *) echo "usage: $0 [ensure|path]" >&2; exit 2 ;;
esac
