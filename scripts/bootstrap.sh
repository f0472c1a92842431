#!/usr/bin/env bash
# Makes a checkout ready to build, test and run: Debian packages, node_modules,
# generated protobuf code, eBPF objects. Idempotent and quiet when there is
# nothing to do, so npm runs it before every `npm test` and `npm start`.
# Needs only bash, coreutils, dpkg/apt and node/npm — no npm packages of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$EPOCHREALTIME
did_work=0
stamps=.bootstrap

say() {
  did_work=1
  echo "bootstrap: $*"
}

die() {
  echo "bootstrap: error: $*" >&2
  exit 1
}

elapsed() {
  awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'
}

# --- Debian packages ----------------------------------------------------------
# etcd/nats-server for the launcher, clang/llvm/libbpf-dev/bpftool for the eBPF
# datapath, iproute2/iptables for node setup, protoc for scripts/gen-proto.sh,
# openssl for the mesh CA and certificates `meshctl up` issues, chromium for the
# dashboard browser test (driven by playwright-core), prometheus for promtool.
packages=(etcd-server nats-server clang llvm libbpf-dev make iproute2 iptables protobuf-compiler bpftool openssl chromium prometheus)

ensure_packages() {
  if ! command -v dpkg-query >/dev/null; then
    say "dpkg-query not found (not Debian?): not checking packages ${packages[*]}"
    return 0
  fi
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} == 0)) && return 0

  local install=(apt-get install -y --no-install-recommends "${missing[@]}")
  if [[ $EUID -ne 0 ]]; then
    die "missing Debian packages: ${missing[*]}
  install them as root, then run this again:
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install[*]}"
  fi
  say "installing Debian packages: ${missing[*]}"
  # One update per run, and only because something has to be installed.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${install[@]}"
}

# --- node_modules -------------------------------------------------------------
lock_hash_file=node_modules/.meshplane-lock-hash

# node_modules matches package-lock.json when npm's own record of what it
# installed (node_modules/.package-lock.json) lists the same version of every
# package the lock file requires. Lets a tree installed by hand (or an
# `npm install` that changed the lock) be adopted without a slow `npm ci`.
installed_tree_matches_lock() {
  [[ -f node_modules/.package-lock.json ]] || return 1
  node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages ?? {};
    const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages ?? {};
    for (const [path, pkg] of Object.entries(want)) {
      if (path === "") continue;
      const got = have[path];
      // Optional packages for other platforms (esbuild, rollup) are rightly absent.
      if (got === undefined ? !pkg.optional : got.version !== pkg.version) process.exit(1);
    }
    for (const path of Object.keys(have)) if (!(path in want)) process.exit(1);
  ' 2>/dev/null
}

ensure_node_modules() {
  [[ -f package-lock.json ]] || die "package-lock.json is missing"
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ -d node_modules && "$(cat "$lock_hash_file" 2>/dev/null || true)" == "$want" ]]; then
    return 0
  fi
  if [[ -d node_modules ]] && installed_tree_matches_lock; then
    echo "$want" >"$lock_hash_file"
    return 0
  fi
  say "installing node_modules (npm ci)"
  # Works nested inside `npm test`: npm ci only touches node_modules.
  npm ci --no-audit --no-fund --prefer-offline
  echo "$want" >"$lock_hash_file"
}

# --- generated protobuf code --------------------------------------------------
# A hash of everything that decides the output: the .proto files (names and
# contents), the generator script and the ts-proto version.
proto_inputs_hash() {
  {
    find proto -name '*.proto' -not -path 'proto/gen/*' -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    sha256sum scripts/gen-proto.sh
    grep -m1 '"version"' node_modules/ts-proto/package.json 2>/dev/null || true
  } | sha256sum | cut -d' ' -f1
}

ensure_generated_code() {
  [[ -f scripts/gen-proto.sh ]] || return 0
  local want
  want=$(proto_inputs_hash)
  if [[ -d proto/gen && -n "$(ls -A proto/gen)" && "$(cat "$stamps/proto.hash" 2>/dev/null || true)" == "$want" ]]; then
    return 0
  fi
  say "generating protobuf code (scripts/gen-proto.sh)"
  bash scripts/gen-proto.sh
  mkdir -p "$stamps"
  echo "$want" >"$stamps/proto.hash"
}

# --- eBPF objects ---------------------------------------------------------------
ensure_bpf_objects() {
  [[ -f bpf/Makefile ]] || return 0
  # make is incremental by itself; -q asks whether anything is out of date.
  if ! make -C bpf -s -q >/dev/null 2>&1; then
    say "building eBPF objects (make -C bpf)"
    make -C bpf -s
  fi
}

ensure_packages
ensure_node_modules
ensure_generated_code
ensure_bpf_objects

if ((did_work)); then
  echo "bootstrap: done ($(elapsed))"
else
  echo "bootstrap: ok ($(elapsed))"
fi
