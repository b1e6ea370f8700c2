#!/usr/bin/env bash
# Real Kubernetes control plane for tests, all on 127.0.0.1, no containers:
#   etcd + kube-apiserver + kube-controller-manager + kube-scheduler (built from the Go module proxy
#   by k8s-build.sh) + KWOK simulating one node (kwok-node-0) and its pods.
#
# Usage: scripts/infra/k8s.sh {build|start|stop|status|env|reset}
#   build   build the five binaries if missing (scripts/infra/k8s-build.sh; slow the first time)
#   start   build if needed, generate PKI/token/kubeconfig once, start what is not running, register
#           the fake node, wait until /readyz ok, node Ready, default ServiceAccount present;
#           no-op when already running and healthy
#   stop    SIGTERM all (kwok, scheduler, controller-manager, apiserver, etcd), SIGKILL after timeout
#   status  exit 0 if all five run and /readyz is ok, 3 otherwise
#   env     print `export KUBECONFIG=...` and `export PROVGRAPH_K8S_NAMESPACE=default`
#   reset   stop and delete $INFRA/run/k8s (etcd data, PKI, token, kubeconfig, logs)
#
# Env: PROVGRAPH_K8S_PORT (16443), PROVGRAPH_ETCD_PORT (12379), PROVGRAPH_ETCD_PEER_PORT (12380),
#      PROVGRAPH_KCM_PORT (16257), PROVGRAPH_SCHEDULER_PORT (16259),
#      PROVGRAPH_K8S_START_TIMEOUT (120), PROVGRAPH_K8S_STOP_TIMEOUT (20),
#      PROVGRAPH_K8S_VERSION / PROVGRAPH_ETCD_VERSION / PROVGRAPH_KWOK_VERSION (see k8s-build.sh),
#      PROVGRAPH_INFRA_DIR.
#
# Pod simulation (KWOK stages written to $RUN/kwok-stages.yaml). A pod bound to kwok-node-0 becomes
# Running at once; then, by pod annotation (on a Job: spec.template.metadata.annotations):
#   (none), pod owned by a Job      -> Succeeded (exit 0) after 1 s  => the Job reaches Complete
#   provgraph.dev/simulate: fail    -> Failed, container exit code provgraph.dev/exit-code (default 1)
#                                      => a Job with backoffLimit: 0 reaches Failed
#   provgraph.dev/simulate: running -> stays Running until deleted
#   provgraph.dev/run-duration: 5s  -> time spent Running before succeed/fail (Go duration, default 1s)
#   any other provgraph.dev/simulate value -> stays Running, like `running`
# Deleting a batch/v1 Job through the API orphans its pods by default: pass
# propagationPolicy=Background (or Foreground) so the garbage collector deletes them.
# Pods being deleted are removed at once (no kubelet). Fake pod/node IPs are written into objects
# only; nothing listens there: never send traffic to them, never use logs/exec/port-forward.
set -euo pipefail

SVC=k8s
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BUILD="$INFRA_SCRIPTS/k8s-build.sh"
K8S_PORT="${PROVGRAPH_K8S_PORT:-16443}"
ETCD_PORT="${PROVGRAPH_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${PROVGRAPH_ETCD_PEER_PORT:-12380}"
KCM_PORT="${PROVGRAPH_KCM_PORT:-16257}"
SCHED_PORT="${PROVGRAPH_SCHEDULER_PORT:-16259}"
START_TIMEOUT="${PROVGRAPH_K8S_START_TIMEOUT:-120}"
STOP_TIMEOUT="${PROVGRAPH_K8S_STOP_TIMEOUT:-20}"
NODE_NAME="kwok-node-0"
NAMESPACE="default"

RUN="$INFRA/run/k8s"
PKI="$RUN/pki"
LOGS="$RUN/logs"
PIDS="$RUN/pids"
KUBECONFIG_FILE="$RUN/kubeconfig"
STAGES="$RUN/kwok-stages.yaml"
APISERVER="https://127.0.0.1:$K8S_PORT"
# start order; stop goes in reverse
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

usage() {
  echo "usage: $0 {build|start|stop|status|env|reset}" >&2
  exit 2
}

bin_dir() { PROVGRAPH_INFRA_DIR="$INFRA" "$BUILD" --bin-dir; }

do_build() {
  # progress lines of the (possibly 30+ min) build go to stderr, keeping stdout clean
  PROVGRAPH_INFRA_DIR="$INFRA" "$BUILD" >&2
}

token() { cut -d, -f1 "$PKI/tokens.csv"; }

# api METHOD PATH [JSON-BODY] -> body on stdout; fails on HTTP >= 400 (except as noted by callers)
api() {
  local method="$1" path="$2" body="${3:-}"
  local args=(-sS --fail --max-time 10 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(token)"
    -X "$method")
  if [[ -n "$body" ]]; then
    args+=(-H "Content-Type: application/json" --data-binary "$body")
  fi
  curl "${args[@]}" "$APISERVER$path"
}

apiserver_ready() { [[ "$(api GET /readyz 2>/dev/null)" == "ok" ]]; }
etcd_healthy() { curl -fsS --max-time 3 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
https_healthz() { [[ "$(curl -fsSk --max-time 3 "https://127.0.0.1:$1/healthz")" == "ok" ]]; }

node_ready() {
  api GET "/api/v1/nodes/$NODE_NAME" 2>/dev/null | "$PYTHON" -c '
import json, sys
n = json.load(sys.stdin)
ok = any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
sys.exit(0 if ok else 1)'
}

default_sa_exists() { api GET "/api/v1/namespaces/$NAMESPACE/serviceaccounts/default" >/dev/null 2>&1; }

# ---- one-time material: CA + serving cert, SA key pair, static token, kubeconfig -------------------
ensure_pki() {
  mkdir -p "$PKI" "$LOGS" "$PIDS"
  if [[ ! -s "$PKI/apiserver.crt" ]]; then
    log "generating PKI in $PKI"
    # A local CA signs the serving cert so clients verify TLS (no insecure-skip-tls-verify).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=provgraph-test-ca" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=kube-apiserver" \
      -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment" >"$PKI/apiserver.ext"
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -s "$PKI/sa.pub" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  if [[ ! -s "$PKI/tokens.csv" ]]; then
    # token,user,uid,"groups"; system:masters = superuser (used by tests and by KCM/scheduler/kwok)
    printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)" >"$PKI/tokens.csv"
  fi
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
  local ca
  ca="$(base64 -w0 <"$PKI/ca.crt")"
  cat >"$KUBECONFIG_FILE.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: provgraph-test
  cluster:
    server: $APISERVER
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $(token)
contexts:
- name: provgraph-test
  context:
    cluster: provgraph-test
    user: admin
    namespace: $NAMESPACE
current-context: provgraph-test
EOF
  chmod 600 "$KUBECONFIG_FILE.tmp"
  mv -f "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

write_stages() {
  # Node stages = kwok's node/fast/node-initialize + node/heartbeat-with-lease (v0.8.0).
  # Pod stages: kwok's pod/fast pod-ready and pod-delete, plus provgraph's complete/fail.
  cat >"$STAGES" <<'EOF'
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}
      addresses:
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID `""` }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID `""` }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage `""` }}
        systemUUID: {{ or $nodeInfo.systemUUID `""` }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
# Job pods without a provgraph.dev/simulate annotation: Running -> Succeeded.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: provgraph-job-pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values: ['Job']
    - key: '.metadata.annotations["provgraph.dev/simulate"]'
      operator: 'DoesNotExist'
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["provgraph.dev/run-duration"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $started := or .status.startTime $now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        reason: PodCompleted
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        reason: PodCompleted
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $started | Quote }}
      {{ end }}
      phase: Succeeded
---
# provgraph.dev/simulate: fail -> Failed with exit code provgraph.dev/exit-code (default 1).
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: provgraph-pod-fail
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["provgraph.dev/simulate"]'
      operator: 'In'
      values: ['fail']
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["provgraph.dev/run-duration"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $started := or .status.startTime $now }}
      {{ $annotations := or .metadata.annotations dict }}
      {{ $exitCode := or ( index $annotations "provgraph.dev/exit-code" ) "1" }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        reason: PodFailed
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        reason: PodFailed
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ $exitCode }}
            finishedAt: {{ $now | Quote }}
            reason: Error
            message: "simulated failure (provgraph.dev/simulate=fail)"
            startedAt: {{ $started | Quote }}
      {{ end }}
      phase: Failed
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
EOF
}

# ---- components ----------------------------------------------------------------------------------
pidfile() { printf '%s/%s.pid\n' "$PIDS" "$1"; }
logfile() { printf '%s/%s.log\n' "$LOGS" "$1"; }
port_of() {
  case "$1" in
    etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$K8S_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT" ;;
    kube-scheduler) echo "$SCHED_PORT" ;;
    kwok) echo "" ;;
  esac
}

# cmd_of COMPONENT BINDIR: sets the global array CMD
cmd_of() {
  local c="$1" B="$2"
  local common=(--bind-address=127.0.0.1 --leader-elect=false --kubeconfig="$KUBECONFIG_FILE"
    "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics" --profiling=false)
  case "$c" in
    etcd)
      CMD=("$B/etcd" --name=provgraph --data-dir="$RUN/etcd"
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster="provgraph=http://127.0.0.1:$ETCD_PEER_PORT"
        --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level=warn)
      ;;
    kube-apiserver)
      CMD=("$B/kube-apiserver"
        --etcd-servers="http://127.0.0.1:$ETCD_PORT"
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$K8S_PORT"
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"
        --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv"
        --authorization-mode=RBAC --allow-privileged=true
        --service-account-issuer=https://kubernetes.default.svc.cluster.local
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
        --service-cluster-ip-range=10.96.0.0/16
        --endpoint-reconciler-type=none --enable-priority-and-fairness=false --profiling=false
        --etcd-compaction-interval=10s --watch-cache=false)  # tests meet real 410 Gone on old watches
      ;;
    kube-controller-manager)
      CMD=("$B/kube-controller-manager" "${common[@]}" --secure-port="$KCM_PORT"
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt")
      ;;
    kube-scheduler)
      CMD=("$B/kube-scheduler" "${common[@]}" --secure-port="$SCHED_PORT")
      ;;
    kwok)
      CMD=("$B/kwok" --kubeconfig="$KUBECONFIG_FILE"
        --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
        --node-ip=127.0.0.1 --node-lease-duration-seconds=40 --config="$STAGES")
      ;;
  esac
}

running_pid() { pid_of "$(pidfile "$1")"; }

start_component() {
  local c="$1" B="$2" p pid
  if pid="$(running_pid "$c")"; then
    log "$c already running (pid $pid)"
    return 0
  fi
  for p in $(port_of "$c"); do
    port_in_use "$p" && die "port 127.0.0.1:$p (for $c) is in use by another process"
  done
  cmd_of "$c" "$B"
  pid="$(start_bg "$(pidfile "$c")" "$(logfile "$c")" "${CMD[@]}")"
  log "$c started (pid $pid, log $(logfile "$c"))"
}

register_node() {
  local body
  body=$(cat <<EOF
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$NODE_NAME",
 "annotations":{"node.alpha.kubernetes.io/ttl":"0","kwok.x-k8s.io/node":"fake"},
 "labels":{"kubernetes.io/hostname":"$NODE_NAME","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"kwok"}},
 "spec":{},
 "status":{"allocatable":{"cpu":"64","memory":"256Gi","pods":"1000"},"capacity":{"cpu":"64","memory":"256Gi","pods":"1000"}}}
EOF
)
  if api GET "/api/v1/nodes/$NODE_NAME" >/dev/null 2>&1; then
    return 0
  fi
  api POST /api/v1/nodes "$body" >/dev/null || api GET "/api/v1/nodes/$NODE_NAME" >/dev/null \
    || die "could not register node $NODE_NAME"
  log "registered fake node $NODE_NAME"
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do running_pid "$c" >/dev/null || return 1; done
}

healthy() { all_running && apiserver_ready; }

_start_locked() {
  local t0 B c
  t0="$(now)"
  if healthy && node_ready && default_sa_exists; then
    log "already running and ready at $APISERVER"
    return 0
  fi
  # with_lock runs this in a subshell: a failed start (die/set -e) leaves nothing running
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; do_stop; fi' EXIT
  need_cmd curl openssl "$PYTHON"
  PROVGRAPH_INFRA_DIR="$INFRA" "$BUILD" --check || do_build
  B="$(bin_dir)"
  ensure_pki
  write_stages
  t0="$(now)" # start time excludes the build

  start_component etcd "$B"
  wait_until "$START_TIMEOUT" "etcd /health on 127.0.0.1:$ETCD_PORT" "$(running_pid etcd || true)" \
    "$(logfile etcd)" etcd_healthy || die "etcd did not become healthy"

  start_component kube-apiserver "$B"
  wait_until "$START_TIMEOUT" "kube-apiserver /readyz on $APISERVER" "$(running_pid kube-apiserver || true)" \
    "$(logfile kube-apiserver)" apiserver_ready || die "kube-apiserver did not become ready"
  log "kube-apiserver ready after $(elapsed_since "$t0")s"

  for c in kube-controller-manager kube-scheduler kwok; do start_component "$c" "$B"; done
  register_node
  wait_until "$START_TIMEOUT" "kube-controller-manager /healthz" "$(running_pid kube-controller-manager || true)" \
    "$(logfile kube-controller-manager)" https_healthz "$KCM_PORT" || die "kube-controller-manager not healthy"
  wait_until "$START_TIMEOUT" "kube-scheduler /healthz" "$(running_pid kube-scheduler || true)" \
    "$(logfile kube-scheduler)" https_healthz "$SCHED_PORT" || die "kube-scheduler not healthy"
  wait_until "$START_TIMEOUT" "node $NODE_NAME Ready (kwok)" "$(running_pid kwok || true)" \
    "$(logfile kwok)" node_ready || die "node $NODE_NAME did not become Ready"
  wait_until "$START_TIMEOUT" "ServiceAccount $NAMESPACE/default (controller-manager)" \
    "$(running_pid kube-controller-manager || true)" "$(logfile kube-controller-manager)" \
    default_sa_exists || die "default ServiceAccount was not created"
  log "control plane ready at $APISERVER in $(elapsed_since "$t0")s (KUBECONFIG=$KUBECONFIG_FILE)"
}

do_start() { with_lock "$RUN.lock" _start_locked; }

do_stop() {
  local c pid group any=0
  # SIGTERM clients first (in parallel), then the apiserver, then etcd
  for group in "kwok kube-scheduler kube-controller-manager" "kube-apiserver" "etcd"; do
    for c in $group; do
      if pid="$(running_pid "$c")"; then
        any=1
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done
    for c in $group; do
      stop_pidfile "$(pidfile "$c")" "$STOP_TIMEOUT"
      if ((STOP_FORCED)); then log "$c killed (SIGKILL)"; fi
    done
  done
  if ((any)); then log "stopped"; else log "not running"; fi
}

do_status() {
  local c pid rc=0 total=0 r
  for c in "${COMPONENTS[@]}"; do
    if pid="$(running_pid "$c")"; then
      r="$(rss_mib "$pid")"
      total=$((total + r))
      printf '%-24s running  pid %-7s rss %5s MiB\n' "$c" "$pid" "$r"
    else
      printf '%-24s stopped\n' "$c"
      rc=3
    fi
  done
  if ((rc == 0)) && apiserver_ready; then
    printf 'apiserver %s /readyz ok; total rss %s MiB; KUBECONFIG=%s\n' "$APISERVER" "$total" "$KUBECONFIG_FILE"
    if node_ready; then echo "node $NODE_NAME Ready"; else echo "node $NODE_NAME not Ready"; fi
  else
    rc=3
  fi
  return "$rc"
}

do_env() {
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
  printf 'export PROVGRAPH_K8S_NAMESPACE=%q\n' "$NAMESPACE"
}

case "${1:-}" in
  build) do_build ;;
  start) mkdir -p "$RUN" && do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) do_env ;;
  reset)
    do_stop
    rm -rf "$RUN" "$RUN.lock"
    log "deleted $RUN"
    ;;
  *) usage ;;
esac
