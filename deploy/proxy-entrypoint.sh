#!/bin/sh
# interlock-proxy KIND [AGENT OPTIONS...]: the entry point of the interlock/haproxy and
# interlock/nginx images. Runs the proxy (KIND: haproxy or nginx) and `interlock agent AGENT
# OPTIONS...` side by side in one container, so one Swarm task is one proxy replica.
#
# - The proxy starts on the files already on disk: the agent keeps its last good bundle there, so
#   a restarted replica serves at once, controller or not. With no files yet (a replica's first
#   start) it starts on a placeholder that listens nowhere; the agent logs that it has nothing to
#   serve until the controller answers.
# - HAProxy runs in master-worker mode (`-W -S $PROXY_MASTER_SOCKET`) so the agent reloads it
#   hitlessly through the master socket; Nginx runs in the foreground and reloads on SIGHUP (pid
#   file in $PROXY_RUN_DIR). The agent is pointed at that socket or pid file, and at the folder of
#   the proxy's config, unless INTERLOCK_RELOAD_* / INTERLOCK_DIR say otherwise.
# - When either process exits, the other is stopped and the container exits, so Swarm restarts the
#   task: a replica never runs a proxy that nothing updates, or an agent with no proxy.
# Run it with `init: true` (the engine's docker-init as PID 1).
set -u
kind=${1:?usage: interlock-proxy haproxy|nginx [agent options...]}
shift

case "$kind" in
haproxy)
  conf=${PROXY_CONFIG:-/etc/haproxy/haproxy.cfg}
  sock=${PROXY_MASTER_SOCKET:-/run/haproxy/master.sock}
  mkdir -p "$(dirname "$conf")" "$(dirname "$sock")" "$(dirname "${PROXY_ADMIN_SOCKET:-/run/haproxy/admin.sock}")"
  if [ ! -s "$conf" ]; then
    echo "interlock-proxy: no $conf yet: haproxy starts with no listener until the agent applies a bundle" >&2
    # the stats socket as interlock renders it (controller.yaml's masterSocket), so the first reload
    # can take the listening sockets over too
    printf '%s\n' '# placeholder: interlock agent has not applied a bundle yet' 'global' '    log stderr local0' \
      "    stats socket ${PROXY_ADMIN_SOCKET:-/run/haproxy/admin.sock} mode 600 level admin expose-fd listeners" \
      'defaults' '    mode http' '    timeout connect 5s' '    timeout client 30s' '    timeout server 30s' >"$conf"
  fi
  haproxy -W -S "$sock" -f "$conf" &
  proxy=$!
  ;;
nginx)
  conf=${PROXY_CONFIG:-/etc/nginx/nginx.conf}
  run=${PROXY_RUN_DIR:-/etc/nginx/run}
  mkdir -p "$(dirname "$conf")" "$run"
  if [ ! -s "$conf" ]; then
    echo "interlock-proxy: no $conf yet: nginx starts with no listener until the agent applies a bundle" >&2
    printf '%s\n' '# placeholder: interlock agent has not applied a bundle yet' "pid $run/nginx.pid;" \
      'error_log stderr warn;' 'events {}' >"$conf"
  fi
  nginx -p "$run" -c "$conf" -g 'daemon off;' &
  proxy=$!
  ;;
*)
  echo "interlock-proxy: unknown proxy '$kind' (haproxy or nginx)" >&2
  exit 2
  ;;
esac

# The agent's folder and reload method default to the proxy this script started (the stack sets
# neither, so one stack file serves both images); a variable or flag given wins.
if [ -z "${INTERLOCK_RELOAD_MASTER_SOCKET:-}${INTERLOCK_RELOAD_PID_FILE:-}${INTERLOCK_RELOAD_COMMAND:-}" ]; then
  case "$kind" in
  haproxy) export INTERLOCK_RELOAD_MASTER_SOCKET="$sock" ;;
  nginx) export INTERLOCK_RELOAD_PID_FILE="$run/nginx.pid" ;;
  esac
fi
[ -n "${INTERLOCK_DIR:-}" ] || export INTERLOCK_DIR="$(dirname "$conf")"

interlock agent "$@" &
agent=$!

stopping=
trap 'stopping=1; kill -TERM "$proxy" "$agent" 2>/dev/null' TERM INT
wait -n
# One of them exited (or a signal came): stop the other, report who went first.
if [ -z "$stopping" ]; then
  if kill -0 "$proxy" 2>/dev/null; then
    echo "interlock-proxy: interlock agent exited; stopping $kind" >&2
  else
    echo "interlock-proxy: $kind exited; stopping interlock agent" >&2
  fi
fi
kill -TERM "$proxy" "$agent" 2>/dev/null
wait
[ -n "$stopping" ] && exit 0
exit 1
