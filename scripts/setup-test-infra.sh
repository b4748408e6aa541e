#!/usr/bin/env bash
# Installs and starts what the integration tests need: Docker Engine in Swarm mode with a local
# busybox test image, HAProxy, Nginx (with its stream module), carbon-cache (graphite-carbon), wrk,
# and the ACME test server pebble with pebble-challtestsrv.
# Idempotent: CI (.ci/run, root, no stdin) may find any part already installed or running.
set -euo pipefail

# libnginx-mod-stream: the stream module (TCP routes, TLS passthrough) the rendered nginx.conf loads.
PACKAGES=(docker.io haproxy nginx libnginx-mod-stream graphite-carbon busybox-static wrk iproute2 iptables pebble openssl curl)
TEST_IMAGE=interlock-test/busybox:1
# Bump when the image contents change so an older local image gets replaced.
TEST_IMAGE_REVISION=2
APPLETS=(sh ash httpd sleep echo cat yes wget mkdir ls env true false printf seq nc rm touch date hostname)
DOCKERD_LOG=/var/log/dockerd.log
DOCKERD_TIMEOUT_S=60

log() { printf '[setup-test-infra] %s\n' "$*"; }
die() {
  printf '[setup-test-infra] ERROR: %s\n' "$*" >&2
  exit 1
}

started_at=$(date +%s)

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts dockerd)"

# --- 1. Packages ------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)" != 'install ok installed' ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing missing packages: ${missing[*]}"
  # Keep package scripts from starting nginx/haproxy/carbon (nginx would take port 80).
  # Only add a policy-rc.d when none exists, and remove only the one we added.
  policy_added=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update </dev/null
  apt-get install -y "${PACKAGES[@]}" </dev/null
  if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
else
  log "packages already installed: ${PACKAGES[*]}"
fi

# --- 2. System services must not run (ports 80, 2003, 2004, 7002 belong to the tests) ---------
# Stop by each package's own pidfile, never by process name: a test's proxy may be running.
stop_service() {
  local name=$1 pidfile=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(head -n1 "$pidfile" | tr -dc '0-9')
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping system service $name (pid $pid)"
    if [ -d /run/systemd/system ]; then
      systemctl stop "$name" || true
    elif [ -x "/etc/init.d/$name" ]; then
      "/etc/init.d/$name" stop </dev/null || true
    fi
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  fi
  # Never start them at boot either.
  if [ -d /run/systemd/system ]; then systemctl disable "$name" >/dev/null 2>&1 || true; fi
}
stop_service nginx /run/nginx.pid
stop_service haproxy /run/haproxy.pid
stop_service carbon-cache /run/carbon-cache.pid
if command -v ss >/dev/null; then
  port80=$(ss -Hltnp 'sport = :80' 2>/dev/null || true)
  if [ -n "$port80" ]; then log "warning: something still listens on port 80: $port80"; fi
fi

# --- 3. Docker Engine ---------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "dockerd already running"
else
  if pgrep -x dockerd >/dev/null; then
    log "dockerd process exists but does not answer yet; waiting for it"
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    # Own session so it outlives this script and whatever process group ran it.
    setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  deadline=$((SECONDS + DOCKERD_TIMEOUT_S))
  until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '[setup-test-infra] last lines of %s:\n' "$DOCKERD_LOG" >&2
      tail -n 40 "$DOCKERD_LOG" >&2 || true
      die "dockerd did not answer within ${DOCKERD_TIMEOUT_S}s"
    fi
    if ! pgrep -x dockerd >/dev/null; then
      printf '[setup-test-infra] last lines of %s:\n' "$DOCKERD_LOG" >&2
      tail -n 40 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited during start-up"
    fi
    sleep 0.5
  done
  log "dockerd is up after $((SECONDS + DOCKERD_TIMEOUT_S - deadline))s"
fi

# --- 4. Swarm -----------------------------------------------------------------------------------
swarm_state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$swarm_state" = active ]; then
  log "swarm already active"
else
  log "initialising swarm (state was '$swarm_state')"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] || die "swarm init did not make the node active"
fi

# --- 5. Test image (no registry here: built from the static busybox) ------------------------------
have_revision=$(docker image inspect --format '{{ index .Config.Labels "org.interlock-test.image-revision" }}' \
  "$TEST_IMAGE" 2>/dev/null || true)
if [ "$have_revision" = "$TEST_IMAGE_REVISION" ]; then
  log "test image $TEST_IMAGE present (revision $TEST_IMAGE_REVISION)"
else
  log "importing test image $TEST_IMAGE (revision $TEST_IMAGE_REVISION) from /bin/busybox"
  # A dynamic busybox would not run in an image that has no libc.
  case "$(ldd /bin/busybox 2>&1 || true)" in
  *'not a dynamic executable'* | *'statically linked'*) ;;
  *) die "/bin/busybox is not statically linked; is busybox-static installed?" ;;
  esac
  d=$(mktemp -d)
  trap 'rm -rf "$d"' EXIT
  mkdir -p "$d/bin" "$d/www" "$d/tmp" "$d/etc"
  chmod 1777 "$d/tmp"
  cp /bin/busybox "$d/bin/busybox"
  for c in "${APPLETS[@]}"; do ln -s busybox "$d/bin/$c"; done
  echo ok >"$d/www/index.html"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
  tar -C "$d" -c . | docker import \
    --change "LABEL org.interlock-test.image-revision=$TEST_IMAGE_REVISION" \
    --change 'ENV PATH=/bin' \
    - "$TEST_IMAGE" >/dev/null
  rm -rf "$d"
  trap - EXIT
fi

# --- 6. ACME test server: pebble + pebble-challtestsrv (Debian's `pebble`), loopback only -------
# pebble (ACME on 127.0.0.1:14000, management on :15000, root CA at https://127.0.0.1:15000/roots/0,
# regenerated on every start) validates HTTP-01 for real: it asks challtestsrv's mock DNS
# (127.0.0.1:8053, every name -> 127.0.0.1) and connects to port $PEBBLE_HTTP_PORT, where the
# proxy's HTTP listener must be (`acme.httpPort` in interlock's config). The package ships no
# listener certificate: a small CA and a certificate for localhost/127.0.0.1 are generated here;
# clients trust $PEBBLE_DIR/listener-ca.pem (`acme.caFile`).
PEBBLE_DIR=/etc/pebble-interlock
PEBBLE_HTTP_PORT=5002
mkdir -p "$PEBBLE_DIR"
if [ ! -s "$PEBBLE_DIR/listener-cert.pem" ] || ! openssl x509 -checkend 86400 -noout -in "$PEBBLE_DIR/listener-cert.pem" >/dev/null 2>&1; then
  log "generating pebble's listener certificate in $PEBBLE_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=interlock test pebble listener CA' \
    -keyout "$PEBBLE_DIR/listener-ca.key" -out "$PEBBLE_DIR/listener-ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
    -keyout "$PEBBLE_DIR/listener-key.pem" -out "$PEBBLE_DIR/listener.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$PEBBLE_DIR/listener.ext"
  openssl x509 -req -in "$PEBBLE_DIR/listener.csr" -CA "$PEBBLE_DIR/listener-ca.pem" -CAkey "$PEBBLE_DIR/listener-ca.key" \
    -CAcreateserial -days 3650 -extfile "$PEBBLE_DIR/listener.ext" -out "$PEBBLE_DIR/listener-cert.pem" 2>/dev/null
  chmod 600 "$PEBBLE_DIR"/*.key "$PEBBLE_DIR/listener-key.pem"
fi
cat >"$PEBBLE_DIR/pebble-config.json" <<JSON
{
  "pebble": {
    "listenAddress": "127.0.0.1:14000",
    "managementListenAddress": "127.0.0.1:15000",
    "certificate": "$PEBBLE_DIR/listener-cert.pem",
    "privateKey": "$PEBBLE_DIR/listener-key.pem",
    "httpPort": $PEBBLE_HTTP_PORT,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
JSON
# Running = the pid in its pid file is alive and is that program (never found by name).
running() {
  local pidfile=$1 program=$2 pid
  [ -s "$pidfile" ] || return 1
  pid=$(head -n1 "$pidfile" | tr -dc '0-9')
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "^$program "
}
if running /run/pebble-challtestsrv.pid /usr/bin/pebble-challtestsrv; then
  log "pebble-challtestsrv already running"
else
  log "starting pebble-challtestsrv (mock DNS 127.0.0.1:8053 -> 127.0.0.1; log /var/log/pebble-challtestsrv.log)"
  setsid nohup /usr/bin/pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 '' -dns01 127.0.0.1:8053 \
    -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:8055 \
    >/var/log/pebble-challtestsrv.log 2>&1 </dev/null &
  echo $! >/run/pebble-challtestsrv.pid
fi
if running /run/pebble.pid /usr/bin/pebble; then
  log "pebble already running"
else
  log "starting pebble (ACME https://127.0.0.1:14000/dir, HTTP-01 on port $PEBBLE_HTTP_PORT; log /var/log/pebble.log)"
  PEBBLE_VA_NOSLEEP=1 setsid nohup /usr/bin/pebble -config "$PEBBLE_DIR/pebble-config.json" -dnsserver 127.0.0.1:8053 \
    >/var/log/pebble.log 2>&1 </dev/null &
  echo $! >/run/pebble.pid
fi
deadline=$((SECONDS + 30))
until curl -fsS --cacert "$PEBBLE_DIR/listener-ca.pem" https://127.0.0.1:14000/dir >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || die "pebble does not answer on https://127.0.0.1:14000/dir (see /var/log/pebble.log)"
  sleep 0.3
done

# --- 7. Versions --------------------------------------------------------------------------------
log "versions:"
printf '  docker client: %s\n' "$(docker version --format '{{.Client.Version}}')"
printf '  docker engine: %s (API %s)\n' "$(docker version --format '{{.Server.Version}}')" \
  "$(docker version --format '{{.Server.APIVersion}}')"
printf '  swarm:         %s\n' "$(docker info --format '{{.Swarm.LocalNodeState}} node={{.Swarm.NodeID}}')"
printf '  haproxy:       %s\n' "$(haproxy -v | head -n1)"
printf '  nginx:         %s\n' "$(nginx -v 2>&1)"
printf '  carbon-cache:  %s\n' "$(dpkg-query -W -f '${Version}' graphite-carbon) ($(command -v carbon-cache))"
printf '  wrk:           %s\n' "$(dpkg-query -W -f '${Version}' wrk)"
printf '  pebble:        %s (https://127.0.0.1:14000/dir)\n' "$(dpkg-query -W -f '${Version}' pebble)"
log "done in $(($(date +%s) - started_at))s"
