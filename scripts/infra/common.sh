# shellcheck shell=bash
# Shared helpers for scripts/infra/*.sh (sourced, not executed).
#
# Provides:
#   REPO, INFRA, PYTHON           repo root, state dir (${PROVGRAPH_INFRA_DIR:-$REPO/.infra}), python
#   log/die                       one-line messages on stderr, prefixed with "$SVC: "
#   now/elapsed_since             wall-clock timing (seconds, one decimal)
#   port_in_use PORT              true if something accepts TCP on 127.0.0.1:PORT
#   pid_of PIDFILE                prints the pid if that process is still the one we started
#   start_bg PIDFILE LOG CMD...   start CMD in its own session (setsid+nohup), pid -> PIDFILE, output -> LOG
#   stop_pidfile PIDFILE [SECS]   SIGTERM, wait up to SECS (default 30), then SIGKILL
#   wait_until SECS DESC PID LOG CMD...   poll CMD until success; fail on timeout or if PID dies
#   log_tail LOG [N]              last N (30) lines of LOG on stderr
#   rss_mib PID                   resident set size in MiB (pid and its children)
#   with_lock LOCKFILE CMD...     run CMD holding an exclusive flock on LOCKFILE
#
# Messages go to stderr so that `eval "$(scripts/infra/kafka.sh env)"` only ever sees exports.

if [[ -n "${_PROVGRAPH_INFRA_COMMON:-}" ]]; then
  return 0
fi
_PROVGRAPH_INFRA_COMMON=1

INFRA_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$INFRA_SCRIPTS/../.." && pwd -P)"
INFRA="${PROVGRAPH_INFRA_DIR:-$REPO/.infra}"
mkdir -p "$INFRA"
INFRA="$(cd "$INFRA" && pwd -P)"
PYTHON="${PYTHON:-python3}"
SVC="${SVC:-infra}"
export INFRA_SCRIPTS REPO INFRA PYTHON

log() { printf '%s: %s\n' "$SVC" "$*" >&2; }

die() {
  printf '%s: ERROR: %s\n' "$SVC" "$*" >&2
  exit 1
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required command '$c' not found in PATH"
  done
}

now() { date +%s.%N; }

# elapsed_since START -> "7.3"
elapsed_since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
_proc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # drop "pid (comm) " - comm may contain spaces
  # remaining fields start at field 3 (state); starttime is field 22 -> index 19 here
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s\n' "${20}"
}

# pid_of PIDFILE: prints the pid and returns 0 if the process recorded in PIDFILE is alive and is
# the same process we started (pid + start time match, so a recycled pid is not mistaken for it).
pid_of() {
  local pidfile="$1" pid want got
  [[ -s "$pidfile" ]] || return 1
  pid="$(head -n1 "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -s "$pidfile.start" ]]; then
    want="$(cat "$pidfile.start")"
    got="$(_proc_starttime "$pid")" || return 1
    [[ "$want" == "$got" ]] || return 1
  fi
  # a zombie is not alive for our purposes
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
  printf '%s\n' "$pid"
}

# start_bg PIDFILE LOGFILE CMD [ARGS...]
# Runs CMD in a new session (survives the calling shell and its terminal), stdin from /dev/null,
# stdout+stderr appended to LOGFILE. The pid written is CMD's own pid (the wrapper shell execs it).
start_bg() {
  local pidfile="$1" logfile="$2"
  shift 2
  rm -f "$pidfile" "$pidfile.start"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  # shellcheck disable=SC2016 # $$/$0/$@ are expanded by the inner shell on purpose
  setsid nohup bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
    "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local i pid
  for ((i = 0; i < 100; i++)); do
    if [[ -s "$pidfile" ]]; then
      pid="$(cat "$pidfile")"
      _proc_starttime "$pid" >"$pidfile.start" 2>/dev/null || true
      printf '%s\n' "$pid"
      return 0
    fi
    sleep 0.05
  done
  die "process did not start (no pid file $pidfile); log: $logfile"
}

# stop_pidfile PIDFILE [TIMEOUT_SECS]: SIGTERM, wait, then SIGKILL. Returns 0 when the process is
# gone. Prints nothing; callers report.
STOP_FORCED=0 # set to 1 by stop_pidfile when SIGKILL was needed
# shellcheck disable=SC2034 # STOP_FORCED is read by the service scripts
stop_pidfile() {
  local pidfile="$1" timeout="${2:-30}" pid deadline
  STOP_FORCED=0
  if ! pid="$(pid_of "$pidfile")"; then
    rm -f "$pidfile" "$pidfile.start"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while pid_of "$pidfile" >/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if pid_of "$pidfile" >/dev/null; then
    STOP_FORCED=1
    log "did not exit ${timeout}s after SIGTERM; sending SIGKILL to pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while pid_of "$pidfile" >/dev/null && ((SECONDS < deadline)); do
      sleep 0.2
    done
    pid_of "$pidfile" >/dev/null && die "pid $pid survived SIGKILL"
  fi
  rm -f "$pidfile" "$pidfile.start"
}

log_tail() {
  local logfile="$1" n="${2:-30}"
  if [[ -f "$logfile" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$logfile" >&2
    tail -n "$n" "$logfile" >&2
    printf -- '----- end of %s -----\n' "$logfile" >&2
  else
    printf '(no log file %s)\n' "$logfile" >&2
  fi
}

# wait_until TIMEOUT_SECS DESCRIPTION PID LOGFILE CMD [ARGS...]
# Polls CMD (output discarded) every 0.5 s until it succeeds. Fails (returns 1, after printing the
# log tail) on timeout or as soon as PID (if non-empty) has exited.
wait_until() {
  local timeout="$1" desc="$2" pid="$3" logfile="$4"
  shift 4
  local deadline=$((SECONDS + timeout)) out reason=""
  out="$(mktemp "${TMPDIR:-/tmp}/provgraph-probe.XXXXXX")"
  while true; do
    if "$@" >"$out" 2>&1; then
      rm -f "$out"
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      reason="process $pid exited while waiting for: $desc"
    elif ((SECONDS >= deadline)); then
      reason="timed out after ${timeout}s waiting for: $desc"
    fi
    if [[ -n "$reason" ]]; then
      log "$reason"
      log_tail "$logfile" 30
      if [[ -s "$out" ]]; then
        log "last readiness probe output:"
        tail -n 5 "$out" >&2
      fi
      rm -f "$out"
      return 1
    fi
    sleep 0.5
  done
}

# rss_mib PID: RSS of PID plus its descendants, in MiB.
rss_mib() {
  local pid="$1" kb=0 p
  local pids=("$pid")
  while read -r p; do pids+=("$p"); done < <(pgrep -P "$pid" 2>/dev/null || true)
  for p in "${pids[@]}"; do
    kb=$((kb + $(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ' || echo 0)))
  done
  printf '%d\n' $((kb / 1024))
}

# with_lock LOCKFILE CMD [ARGS...]: serialise fetch/start across concurrent invocations.
with_lock() {
  local lockfile="$1"
  shift
  mkdir -p "$(dirname "$lockfile")"
  (
    flock -w 900 9 || die "could not lock $lockfile within 900s"
    "$@"
  ) 9>"$lockfile"
}

# python_has MODULE: true if ${PYTHON} can import MODULE.
python_has() {
  command -v "$PYTHON" >/dev/null 2>&1 || return 1
  "$PYTHON" -c "import $1" >/dev/null 2>&1
}

# mvn_copy_deps POM OUTDIR: resolve POM's runtime dependencies into OUTDIR (atomic: tmp + rename).
MVN_DEP_PLUGIN="${PROVGRAPH_MVN_DEP_PLUGIN:-org.apache.maven.plugins:maven-dependency-plugin:3.8.1}"
mvn_copy_deps() {
  local pom="$1" out="$2" mvnlog
  need_cmd mvn java
  mvnlog="$(dirname "$pom")/mvn.log"
  rm -rf "$out.tmp"
  if ! mvn -B -f "$pom" "$MVN_DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$out.tmp" >"$mvnlog" 2>&1; then
    log "maven failed resolving $pom"
    log_tail "$mvnlog" 30
    rm -rf "$out.tmp"
    return 1
  fi
  rm -rf "$out"
  mv "$out.tmp" "$out"
  touch "$out/.complete"
}

# Subcommands shared by the single-process services (kafka, neo4j, s3). The calling script sets
# RUN and PIDFILE and defines `_start_locked` (start, then wait for `probe`) and `probe`.
service_start() {
  with_lock "$RUN.lock" _start_locked
}

# shellcheck disable=SC2153  # PIDFILE is set by the calling script
service_stop() {
  local pid t0
  if ! pid="$(pid_of "$PIDFILE")"; then
    rm -f "$PIDFILE" "$PIDFILE.start"
    log "not running"
    return 0
  fi
  t0="$(now)"
  stop_pidfile "$PIDFILE" "${PROVGRAPH_INFRA_STOP_TIMEOUT:-30}"
  if [[ "$STOP_FORCED" == 1 ]]; then
    log "stopped (pid $pid, killed) in $(elapsed_since "$t0")s"
  else
    log "stopped (pid $pid) in $(elapsed_since "$t0")s"
  fi
}

# service_status ADDRESS: exit 0 when the process runs and answers `probe`, else 3.
# shellcheck disable=SC2153
service_status() {
  local pid
  if ! pid="$(pid_of "$PIDFILE")"; then
    log "stopped"
    return 3
  fi
  if probe >/dev/null 2>&1; then
    log "running (pid $pid, rss $(rss_mib "$pid") MiB) on $1"
    return 0
  fi
  log "process running (pid $pid) but not answering on $1"
  return 3
}

# maven_pom NAME GROUP:ARTIFACT:VERSION...: write $DIST/pom.xml, a pom-packaged project that only
# declares these dependencies (what `mvn dependency:copy-dependencies` resolves into $LIB).
maven_pom() {
  local name="$1" coord group artifact version
  shift
  mkdir -p "$DIST"
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated by scripts/infra -->\n'
    printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
    printf '  <groupId>local.infra</groupId><artifactId>%s</artifactId><version>0</version>\n' "$name"
    printf '  <packaging>pom</packaging>\n  <dependencies>\n'
    for coord in "$@"; do
      IFS=: read -r group artifact version <<<"$coord"
      printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' \
        "$group" "$artifact" "$version"
    done
    printf '  </dependencies>\n</project>\n'
  } >"$DIST/pom.xml"
}

# fetch_jars WHAT LOCKFILE: resolve the calling script's `write_pom` (into $DIST/pom.xml) to jars in
# $LIB with Maven, once: `.complete` marks a finished fetch, the lock keeps two fetches apart.
fetch_jars() {
  if [[ -f "$LIB/.complete" ]]; then
    log "jars present: $LIB"
    return 0
  fi
  FETCH_WHAT="$1" with_lock "$2" _fetch_jars_locked
}

_fetch_jars_locked() {
  if [[ -f "$LIB/.complete" ]]; then
    return 0
  fi
  local t0
  t0="$(now)"
  log "fetching $FETCH_WHAT jars from Maven Central into $LIB"
  write_pom
  mvn_copy_deps "$DIST/pom.xml" "$LIB" || die "fetch failed (see $DIST/mvn.log)"
  log "fetched $(find "$LIB" -name '*.jar' | wc -l) jars in $(elapsed_since "$t0")s"
}
