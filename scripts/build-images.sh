#!/usr/bin/env bash
# Builds interlock's container images without a registry and without base images: each one is a
# root file system put together from this machine's own binaries and imported with `docker import`.
#
#   interlock/interlock:local  node + the built interlock package (controller, agent, stats)
#   interlock/haproxy:local    the same + haproxy and its shared libraries (proxy + agent in one task)
#   interlock/nginx:local      the same + nginx, its stream module and their shared libraries
#
# Every image also has a static busybox (/bin/sh and the usual tools) and tini is not needed in it
# (services use `init: true`, which is the engine's own docker-init). Shared libraries are found
# with ldd and copied to the same paths, so the binaries run as they do on the host.
#
# Usage: scripts/build-images.sh [--out DIR] [--only interlock|haproxy|nginx]... [--import]
#   --out DIR   where the tars go (default build/images): NAME.tar, NAME.image (name:tag),
#               NAME.revision (a hash of the inputs) and NAME.changes (the `docker import --change`
#               lines). An image whose inputs did not change is not rebuilt.
#   --import    also `docker import` them into the engine DOCKER_HOST (or the default socket)
#               points at, unless it already has that revision.
# To use them on a multi-node Swarm, import them on every node (scripts/multinode-swarm.sh does).
#
# dist/ is built first (`npm run build`) when it is missing or older than src/. The package's
# production dependencies are installed from the npm cache (`npm ci --omit=dev --prefer-offline`).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

OUT=$REPO/build/images
ONLY=()
IMPORT=
while [[ $# -gt 0 ]]; do
  case "$1" in
  --out)
    OUT=$(realpath -m "$2")
    shift 2
    ;;
  --only)
    ONLY+=("$2")
    shift 2
    ;;
  --import)
    IMPORT=1
    shift
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
done
[[ ${#ONLY[@]} -gt 0 ]] || ONLY=(interlock haproxy nginx)

TAG=${INTERLOCK_IMAGE_TAG:-local}
APPLETS=(sh ash cat ls mkdir rm mv cp ln env sleep kill ps echo printf test true false wget nc hostname id
  date timeout nslookup grep sed head tail wc tr chmod chown touch)
NODE_BIN=$(command -v node)

log() { printf '[build-images] %s\n' "$*" >&2; }
die() {
  printf '[build-images] ERROR: %s\n' "$*" >&2
  exit 1
}

for b in "$NODE_BIN" /bin/busybox; do [[ -x $b ]] || die "$b is missing"; done
case "$(ldd /bin/busybox 2>&1 || true)" in
*'not a dynamic executable'* | *'statically linked'*) ;;
*) die "/bin/busybox is not statically linked (install busybox-static: scripts/setup-test-infra.sh)" ;;
esac

# --- dist/ ---------------------------------------------------------------------------------------
if [[ ! -f dist/cli/main.js ]] || [[ -n $(find src templates package.json -newer dist/cli/main.js -type f -print -quit) ]]; then
  log "building dist/ (npm run build)"
  npm run --silent build
fi

# --- inputs hash: an image is rebuilt only when one of these changed ----------------------------
# `stat` of the binaries (path, size, mtime) stands for their content: they only change with the
# package that ships them.
inputs_hash() {
  local kind=$1
  {
    echo "script $(sha256sum <"$0")"
    echo "tag $TAG"
    find dist templates schema bin package.json package-lock.json deploy/proxy-entrypoint.sh deploy/malloc.env -type f -print0 |
      sort -z | xargs -0 sha256sum
    stat -L -c '%n %s %Y' "$NODE_BIN" /bin/busybox
    case "$kind" in
    haproxy) stat -L -c '%n %s %Y' /usr/sbin/haproxy ;;
    nginx) stat -L -c '%n %s %Y' /usr/sbin/nginx /usr/lib/nginx/modules/ngx_stream_module.so ;;
    esac
  } | sha256sum | cut -c1-16
}

# --- root file system pieces -------------------------------------------------------------------
# copies a binary (or shared object) and every library ldd lists for it, at the same paths
copy_with_libs() {
  local root=$1 bin=$2 lib
  mkdir -p "$root$(dirname "$bin")"
  cp -L "$bin" "$root$bin"
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [[ -e $root$lib ]] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

APP_DIR=
prepare_app() { # the package with its production dependencies, once per run
  [[ -n $APP_DIR ]] && return 0
  APP_DIR=$(mktemp -d)
  cp -r package.json package-lock.json bin dist templates schema "$APP_DIR/"
  log "installing production dependencies (npm ci --omit=dev)"
  (cd "$APP_DIR" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
}

base_rootfs() {
  local root=$1 a
  mkdir -p "$root"/{bin,etc,tmp,usr/bin,usr/local/bin,run,var/log,app}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in "${APPLETS[@]}"; do ln -s busybox "$root/bin/$a"; done
  ln -s /bin/busybox "$root/usr/bin/env" # bin/interlock.js starts with #!/usr/bin/env node
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  copy_with_libs "$root" "$NODE_BIN"
  [[ $NODE_BIN == /usr/bin/node ]] || ln -s "$NODE_BIN" "$root/usr/bin/node"
  prepare_app
  cp -r "$APP_DIR/." "$root/app/"
  ln -s /app/bin/interlock.js "$root/usr/local/bin/interlock"
}

proxy_entrypoint() { # $1 root, $2 haproxy|nginx
  install -m 0755 "$REPO/deploy/proxy-entrypoint.sh" "$1/usr/local/bin/interlock-proxy"
}

build_one() {
  local kind=$1 image rev root changes
  image=interlock/$kind:$TAG
  rev=$(inputs_hash "$kind")
  if [[ -f $OUT/$kind.tar && $(cat "$OUT/$kind.revision" 2>/dev/null) == "$rev" ]]; then
    log "$image is up to date ($rev)"
    return 0
  fi
  root=$(mktemp -d)
  base_rootfs "$root"
  changes=('ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' 'WORKDIR /app' "LABEL org.interlock.image=$kind")
  # malloc settings of the long-running processes (deploy/malloc.env says why)
  while IFS= read -r setting; do changes+=("ENV $setting"); done < <(grep -E '^[A-Z_]+=[^ ]+$' "$REPO/deploy/malloc.env")
  case "$kind" in
  interlock)
    changes+=('ENTRYPOINT ["/usr/bin/node", "/app/bin/interlock.js"]' 'CMD ["--help"]')
    ;;
  haproxy)
    copy_with_libs "$root" /usr/sbin/haproxy
    mkdir -p "$root/etc/haproxy" "$root/run/haproxy" "$root/var/lib/haproxy"
    proxy_entrypoint "$root" haproxy
    changes+=('ENTRYPOINT ["/usr/local/bin/interlock-proxy", "haproxy"]')
    ;;
  nginx)
    copy_with_libs "$root" /usr/sbin/nginx
    copy_with_libs "$root" /usr/lib/nginx/modules/ngx_stream_module.so
    # nginx opens its compiled-in error log before it reads the config
    mkdir -p "$root/etc/nginx" "$root/run/nginx" "$root/var/log/nginx" "$root/var/lib/nginx"
    cp /etc/nginx/mime.types "$root/etc/nginx/" 2>/dev/null || true
    proxy_entrypoint "$root" nginx
    changes+=('ENTRYPOINT ["/usr/local/bin/interlock-proxy", "nginx"]')
    ;;
  *) die "unknown image '$kind' (interlock, haproxy or nginx)" ;;
  esac
  mkdir -p "$OUT"
  tar --numeric-owner -C "$root" -cf "$OUT/.$kind.tar.tmp" .
  rm -rf "$root"
  mv "$OUT/.$kind.tar.tmp" "$OUT/$kind.tar"
  printf '%s\n' "${changes[@]}" >"$OUT/$kind.changes"
  echo "$image" >"$OUT/$kind.image"
  echo "$rev" >"$OUT/$kind.revision"
  log "built $image ($rev, $(du -m "$OUT/$kind.tar" | cut -f1) MiB): $OUT/$kind.tar"
}

for kind in "${ONLY[@]}"; do build_one "$kind"; done
[[ -z $APP_DIR ]] || rm -rf "$APP_DIR"

# --- import into one engine ------------------------------------------------------------------------
if [[ -n $IMPORT ]]; then
  for kind in "${ONLY[@]}"; do
    image=$(cat "$OUT/$kind.image")
    rev=$(cat "$OUT/$kind.revision")
    have=$(docker image inspect --format '{{ index .Config.Labels "org.interlock.revision" }}' "$image" 2>/dev/null || true)
    if [[ $have == "$rev" ]]; then
      log "$image ($rev) already in the engine"
      continue
    fi
    args=()
    while IFS= read -r c; do args+=(--change "$c"); done <"$OUT/$kind.changes"
    docker import "${args[@]}" --change "LABEL org.interlock.revision=$rev" "$OUT/$kind.tar" "$image" >/dev/null
    log "imported $image ($rev)"
  done
fi
