#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for the multi-node integration tests and for
# trying the Swarm deployment (README, "Deploying on Swarm"). Three extra Docker engines, each in
# its own network + UTS namespace (own host name, address, data root, exec root, socket, pidfile,
# containerd namespaces and cgroup parent), joined into one Swarm: a manager and two workers, with
# overlay networking between them. The host's own dockerd and its one-node Swarm are not touched.
#
#   host netns   bridge ilm-br0 10.231.0.1/24 (+ one iptables FORWARD accept rule for it)
#   netns ilm-m1 eth0 10.231.0.2  dockerd -H unix:///run/ilm-m1.sock   manager
#   netns ilm-w1 eth0 10.231.0.3  dockerd -H unix:///run/ilm-w1.sock   worker
#   netns ilm-w2 eth0 10.231.0.4  dockerd -H unix:///run/ilm-w2.sock   worker
#
# The namespaces have no default route: nothing they run can reach beyond 10.231.0.0/24. Swarm
# overlays take their subnets from 10.232.0.0/16 (the default pool, 10.0.0.0/8, would overlap).
# This kernel has no IPVS, so service VIPs and the ingress routing mesh do not work here: use
# `--endpoint-mode dnsrr` (stack: `endpoint_mode: dnsrr`) and host-mode published ports.
#
# Usage (as root): scripts/multinode-swarm.sh COMMAND
#   up              bridge, namespaces, engines, swarm, test images in every engine (idempotent:
#                   reuses what is up, repairs what is not)
#   down            stops the engines and removes everything `up` made (idempotent)
#   status          engines, nodes and services; exit 0 when all three nodes are Ready
#   stop NODE       stops one engine (m1, w1 or w2); its node goes Down
#   start NODE      starts it again and waits until its node is Ready
#   restart NODE    stop + start
#   images          (re)imports the test images into every engine (`up` does it too)
#   env             prints shell lines: MANAGER_HOST, node addresses, sockets
#
# Images: interlock-test/busybox:1 (from /bin/busybox), and the interlock images that
# scripts/build-images.sh builds: MULTINODE_IMAGES, default "interlock haproxy" (add nginx for
# interlock/nginx; "busybox" for none). An image is re-imported only when its revision changed.
#
# Processes are found by their pidfiles (dockerd, its containerd, the containerd shims) and checked
# against /proc/PID/cmdline; container processes by the engine's own cgroup parent. Never by name:
# with these engines up, several processes are called dockerd.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD

PREFIX=ilm
NODES=(m1 w1 w2)
MANAGER=m1
BR=${PREFIX}-br0
SUBNET=${MULTINODE_SUBNET:-10.231.0}
BR_ADDR=$SUBNET.1
declare -A IP=([m1]=$SUBNET.2 [w1]=$SUBNET.3 [w2]=$SUBNET.4)
POOL=${MULTINODE_POOL:-10.232.0.0/16}
STATE=/var/lib/interlock-multinode
FWD_COMMENT=interlock-multinode
FWD_RULE=(FORWARD -i "$BR" -o "$BR" -m comment --comment "$FWD_COMMENT" -j ACCEPT)
BUSYBOX_IMAGE=interlock-test/busybox:1
BUSYBOX_REVISION=2
BUSYBOX_APPLETS=(sh ash httpd sleep echo cat yes wget mkdir ls env true false printf seq nc rm touch date hostname
  nslookup timeout ps kill)
ENGINE_START_S=120
READY_S=120

log() { printf '[multinode] %s %s\n' "$(date +%T)" "$*" >&2; }
die() {
  printf '[multinode] ERROR: %s\n' "$*" >&2
  exit 1
}

name() { echo "$PREFIX-$1"; }              # ilm-m1: netns, host name, node name
sock() { echo "/run/$PREFIX-$1.sock"; }
pidfile() { echo "/run/$PREFIX-$1.pid"; }
execroot() { echo "/run/$PREFIX-$1"; }
dataroot() { echo "$STATE/$1/data"; }
dk() {
  local n=$1
  shift
  docker -H "unix://$(sock "$n")" "$@"
}
valid_node() {
  local n
  for n in "${NODES[@]}"; do [[ $n == "$1" ]] && return 0; done
  die "unknown node '$1' (one of: ${NODES[*]})"
}

# The argv of PID as one line (NULs as spaces); empty when there is no such process.
cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# PID from a pidfile, printed only if that process's command line contains every given string
# (pids wrap quickly, so a stale pidfile must never point at another process).
pid_from() {
  local file=$1 p cmd s
  shift
  [[ -s $file ]] || return 1
  p=$(tr -dc '0-9' <"$file")
  [[ -n $p ]] || return 1
  cmd=" $(cmdline_of "$p")"
  [[ $cmd != " " ]] || return 1
  for s in "$@"; do [[ $cmd == *"$s"* ]] || return 1; done
  echo "$p"
}
dockerd_pid() { pid_from "$(pidfile "$1")" 'dockerd ' "--pidfile $(pidfile "$1") "; }
containerd_pid() { pid_from "$(execroot "$1")/containerd/containerd.pid" "containerd " "$(execroot "$1")/containerd/"; }

# Every process that belongs to engine $1 (besides dockerd and containerd): the containerd shims
# (their shim.pid files under the engine's exec root) and the container processes (cgroup.procs
# under the engine's cgroup parent, /ilm-NODE, in every hierarchy).
engine_children() {
  local n=$1 f p
  for f in "$(execroot "$n")"/containerd/daemon/io.containerd.runtime.v2.task/*/*/shim.pid \
    "$(execroot "$n")"/containerd/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [[ -e $f ]] || continue
    p=$(pid_from "$f" 'containerd-shim' "-namespace $(name "$n") ") && echo "$p"
  done
  for f in /sys/fs/cgroup/*/"$(name "$n")" /sys/fs/cgroup/"$(name "$n")"; do
    [[ -d $f ]] || continue
    find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  done | sort -un
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 d=$2
  shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || {
      log "timed out after ${t}s waiting for: $d"
      return 1
    }
    sleep 0.5
  done
}

# ------------------------------------------------------------------------------------- network
net_up() {
  ip link show "$BR" >/dev/null 2>&1 || ip link add "$BR" type bridge
  ip addr replace "$BR_ADDR/24" dev "$BR"
  ip link set "$BR" up
  local n ns
  for n in "${NODES[@]}"; do
    ns=$(name "$n")
    [[ -e /run/netns/$ns ]] || ip netns add "$ns"
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
      ip link del "$ns-h" 2>/dev/null || true
      ip link add "$ns-h" type veth peer name eth0 netns "$ns"
    fi
    ip link set "$ns-h" master "$BR" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "${IP[$n]}/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  # The host's FORWARD policy is DROP (the host dockerd sets it) and bridged frames go through
  # iptables (br_netfilter), so frames between the veths need this one accept rule.
  iptables -C "${FWD_RULE[@]}" 2>/dev/null || iptables -I FORWARD 1 "${FWD_RULE[@]:1}"
}

net_down() {
  while iptables -C "${FWD_RULE[@]}" 2>/dev/null; do iptables -D "${FWD_RULE[@]}"; done
  local n
  for n in "${NODES[@]}"; do
    ip link del "$(name "$n")-h" 2>/dev/null || true # its peer (eth0 in the netns) goes with it
    if [[ -e /run/netns/$(name "$n") ]]; then ip netns del "$(name "$n")"; fi
  done
  ip link del "$BR" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------- engines
close_fds() {
  local fd
  for fd in $(ls /proc/$BASHPID/fd); do
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

engine_up() {
  local n=$1 ns started
  ns=$(name "$n")
  if dockerd_pid "$n" >/dev/null && dk "$n" version >/dev/null 2>&1; then return 0; fi
  if dockerd_pid "$n" >/dev/null; then
    log "engine $n (pid $(dockerd_pid "$n")) does not answer yet; waiting"
  else
    engine_reap "$n" # what a killed engine may have left (shims, containerd, mounts)
    mkdir -p "$STATE/$n" "$(dataroot "$n")" "$(execroot "$n")"
    # Its own config file, so /etc/docker/daemon.json never applies, and its own key file: the
    # engine ID comes from it, and engines sharing /etc/docker/key.json could not join one Swarm.
    printf '{ "deprecated-key-path": "%s" }\n' "$STATE/$n/key.json" >"$STATE/$n/daemon.json"
    # The engine must not inherit this script's other descriptors: a lock held around `up`
    # (flock FILE scripts/multinode-swarm.sh up) would otherwise stay held by dockerd forever.
    # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup hierarchies from
    # dockerd); unshare --uts gives the engine its own host name, hence its own Swarm node name.
    (
      close_fds
      exec setsid nsenter --net="/run/netns/$ns" -- unshare --uts -- sh -c "hostname $ns && exec env \
      DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 dockerd \
      --config-file $STATE/$n/daemon.json \
      --data-root $(dataroot "$n") \
      --exec-root $(execroot "$n") \
      --pidfile $(pidfile "$n") \
      -H unix://$(sock "$n") \
      --containerd-namespace $ns \
      --containerd-plugins-namespace $ns-plugins \
      --cgroup-parent /$ns \
      --userland-proxy=false \
      --swarm-default-advertise-addr ${IP[$n]}" \
        >>"$STATE/$n/dockerd.log" 2>&1 </dev/null
    ) &
    log "starting engine $n (log: $STATE/$n/dockerd.log)"
  fi
  started=$SECONDS
  local end=$((SECONDS + ENGINE_START_S))
  until dk "$n" version >/dev/null 2>&1; do
    if ((SECONDS > started + 5)) && ! dockerd_pid "$n" >/dev/null; then
      tail -n 20 "$STATE/$n/dockerd.log" >&2 || true
      die "engine $n exited during start-up (log above: $STATE/$n/dockerd.log)"
    fi
    if ((SECONDS >= end)); then
      tail -n 20 "$STATE/$n/dockerd.log" >&2 || true
      die "engine $n did not answer within ${ENGINE_START_S}s"
    fi
    sleep 0.3
  done
  log "engine $n up (pid $(dockerd_pid "$n")) in $((SECONDS - started))s"
}

engine_stop() {
  local n=$1 pid end
  pid=$(dockerd_pid "$n") || return 0
  log "stopping engine $n (pid $pid)"
  kill -TERM "$pid"
  end=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.3; done
  if kill -0 "$pid" 2>/dev/null; then
    log "engine $n still running after 60s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  return 0
}

# Kills what is left of engine $1 once its dockerd is gone: containerd, shims, containers.
engine_reap() {
  local n=$1 p pids
  dockerd_pid "$n" >/dev/null && return 0
  pids=$( (
    containerd_pid "$n" || true
    engine_children "$n"
  ) | sort -un)
  [[ -n $pids ]] || return 0
  log "engine $n: killing leftover processes $(echo $pids)"
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  pids=$( (
    containerd_pid "$n" || true
    engine_children "$n"
  ) | sort -un)
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  return 0
}

engine_remove() {
  local n=$1 m c
  engine_reap "$n"
  # unmount what is still mounted below the engine's roots, deepest first
  for m in $(awk -v a="$STATE/$n/" -v b="$(execroot "$n")/" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' \
    /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "${STATE:?}/$n" "$(execroot "$n")" "$(pidfile "$n")" "$(sock "$n")"
  for c in /sys/fs/cgroup/*/"$(name "$n")" /sys/fs/cgroup/"$(name "$n")"; do
    [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}

# ------------------------------------------------------------------------------------- swarm
swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
node_status() { dk "$MANAGER" node inspect "$(name "$1")" --format '{{.Status.State}}' 2>/dev/null; }
all_ready() {
  local n
  for n in "${NODES[@]}"; do [[ $(node_status "$n") == ready ]] || return 1; done
}

swarm_up() {
  if [[ $(swarm_state "$MANAGER") != active ]]; then
    dk "$MANAGER" swarm init --advertise-addr "${IP[$MANAGER]}" --listen-addr "${IP[$MANAGER]}:2377" \
      --default-addr-pool "$POOL" --default-addr-pool-mask-length 24 >/dev/null
    log "swarm initialised on $MANAGER"
  fi
  local token n
  token=$(dk "$MANAGER" swarm join-token -q worker)
  for n in "${NODES[@]}"; do
    [[ $n == "$MANAGER" ]] && continue
    case "$(swarm_state "$n")" in
    active) continue ;;
    pending | error)
      # joined an older swarm (its manager was recreated): leave it, then join this one
      dk "$n" swarm leave --force >/dev/null 2>&1 || true
      ;;
    esac
    dk "$n" swarm join --token "$token" --advertise-addr "${IP[$n]}" --listen-addr "${IP[$n]}:2377" \
      "${IP[$MANAGER]}:2377" >/dev/null
    log "$n joined"
  done
  # Nodes of earlier runs (a worker whose data root was removed joins as a new node) stay Down:
  # remove them so `node ls` shows only the three.
  local id
  for id in $(dk "$MANAGER" node ls --filter role=worker --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" { print $1 }'); do
    dk "$MANAGER" node rm --force "$id" >/dev/null 2>&1 || true
  done
  wait_for "$READY_S" "all nodes Ready" all_ready || die "not every node became Ready: $(dk "$MANAGER" node ls 2>&1)"
}

# ------------------------------------------------------------------------------------- images
image_revision() { dk "$1" image inspect --format '{{ index .Config.Labels "org.interlock.revision" }}' "$2" 2>/dev/null || true; }

busybox_rootfs() {
  local d=$1 a
  case "$(ldd /bin/busybox 2>&1 || true)" in
  *'not a dynamic executable'* | *'statically linked'*) ;;
  *) die "/bin/busybox is not statically linked; run scripts/setup-test-infra.sh (busybox-static)" ;;
  esac
  mkdir -p "$d/bin" "$d/www" "$d/tmp" "$d/etc"
  chmod 1777 "$d/tmp"
  cp /bin/busybox "$d/bin/busybox"
  for a in "${BUSYBOX_APPLETS[@]}"; do ln -s busybox "$d/bin/$a"; done
  echo ok >"$d/www/index.html"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
}

images_up() {
  local n tmp
  for n in "${NODES[@]}"; do
    [[ $(image_revision "$n" "$BUSYBOX_IMAGE") == "mn-$BUSYBOX_REVISION" ]] && continue
    tmp=$(mktemp -d)
    busybox_rootfs "$tmp"
    tar -C "$tmp" -c . | dk "$n" import --change "LABEL org.interlock.revision=mn-$BUSYBOX_REVISION" \
      --change 'ENV PATH=/bin' - "$BUSYBOX_IMAGE" >/dev/null
    rm -rf "$tmp"
    log "imported $BUSYBOX_IMAGE into $n"
  done
  # scripts/build-images.sh writes one tar per image with its revision next to it, and rebuilds
  # only when the inputs changed. Each engine imports in parallel with the others.
  local kinds=(${MULTINODE_IMAGES:-interlock haproxy}) only=() k
  [[ ${kinds[*]} == busybox ]] && return 0
  for k in "${kinds[@]}"; do only+=(--only "$k"); done
  local out=${IMAGES_DIR:-$REPO/build/images}
  bash "$REPO/scripts/build-images.sh" --out "$out" "${only[@]}" >&2
  for n in "${NODES[@]}"; do import_images "$n" "$out" "${kinds[@]}" & done
  wait_all "importing the images"
}

import_images() { # NODE DIR KIND...
  local n=$1 out=$2 kind image rev c
  shift 2
  for kind in "$@"; do
    image=$(cat "$out/$kind.image")
    rev=$(cat "$out/$kind.revision")
    [[ $(image_revision "$n" "$image") == "$rev" ]] && continue
    local args=()
    while IFS= read -r c; do args+=(--change "$c"); done <"$out/$kind.changes"
    dk "$n" import "${args[@]}" --change "LABEL org.interlock.revision=$rev" "$out/$kind.tar" "$image" >/dev/null
    log "imported $image ($rev) into $n"
  done
}

# ------------------------------------------------------------------------------------- commands
cmd_up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, iptables, dockerd)"
  local t0=$SECONDS n
  net_up
  for n in "${NODES[@]}"; do engine_up "$n" & done
  wait_all "starting the engines"
  swarm_up
  images_up
  log "up in $((SECONDS - t0))s: manager $(sock "$MANAGER") (${IP[$MANAGER]}), workers ${IP[w1]} ${IP[w2]}"
}

# waits for every background job; fails if any failed
wait_all() {
  local rc=0 j
  for j in $(jobs -p); do wait "$j" || rc=1; done
  ((rc == 0)) || die "$1 failed"
}

cmd_down() {
  local n
  for n in "${NODES[@]}"; do engine_stop "$n" & done
  wait_all "stopping the engines"
  log "engines stopped"
  for n in "${NODES[@]}"; do engine_remove "$n"; done
  log "engine files removed"
  net_down
  rmdir "$STATE" 2>/dev/null || true
  log "down: engines, namespaces, bridge and rule removed"
}

cmd_status() {
  local n rc=0 pid
  for n in "${NODES[@]}"; do
    pid=$(dockerd_pid "$n" || echo -)
    printf '%-3s %-12s pid=%-7s swarm=%-8s node=%s\n' "$n" "${IP[$n]}" "$pid" "$(swarm_state "$n" || echo -)" \
      "$(node_status "$n" || echo -)"
    [[ $(node_status "$n") == ready ]] || rc=1
  done
  if [[ $(swarm_state "$MANAGER") == active ]]; then
    dk "$MANAGER" node ls
    dk "$MANAGER" service ls
  fi
  return $rc
}

cmd_stop() {
  valid_node "$1"
  engine_stop "$1"
  engine_reap "$1"
  if [[ $1 != "$MANAGER" ]] && dockerd_pid "$MANAGER" >/dev/null; then
    wait_for 60 "node $1 Down" bash -c "[[ \$(docker -H unix://$(sock "$MANAGER") node inspect $(name "$1") --format '{{.Status.State}}') == down ]]" ||
      true
  fi
}

cmd_start() {
  valid_node "$1"
  engine_up "$1"
  wait_for "$READY_S" "node $1 Ready" bash -c "[[ \$(docker -H unix://$(sock "$MANAGER") node inspect $(name "$1") --format '{{.Status.State}}') == ready ]]" ||
    die "node $1 not Ready after ${READY_S}s"
  log "node $1 Ready"
}

cmd_env() {
  echo "MANAGER_HOST=unix://$(sock "$MANAGER")"
  echo "BRIDGE_ADDR=$BR_ADDR"
  local n
  for n in "${NODES[@]}"; do
    echo "NODE_${n^^}_ADDR=${IP[$n]}"
    echo "NODE_${n^^}_HOST=unix://$(sock "$n")"
  done
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
stop) cmd_stop "${2:?node}" ;;
start) cmd_start "${2:?node}" ;;
restart)
  cmd_stop "${2:?node}"
  cmd_start "$2"
  ;;
images) images_up ;;
env) cmd_env ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
