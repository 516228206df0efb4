#!/usr/bin/env bash
# deploy/cross/build.sh - build Hearth for Raspberry Pis without Docker, and prove the binaries
# under qemu-user with the Pis' CPU models.
#
#   deploy/cross/build.sh [install|build|smoke|all|table|check|build-smoke]   (default: all)
#
#   check: the work dir is usable by this user (prints it); build-smoke: build, smoke, table
#   (all but install: `cargo xtask cross` installs first, in the foreground, as sudo may ask).
#
# How (docs/cross.md has the other way, with `cross`, and why this one):
#   - Debian's Rust (rustc-web, cargo-web) and its std source (rust-web-src, the same version)
#     rebuild std for each target with -Zbuild-std (RUSTC_BOOTSTRAP=1): `rustup target add`
#     is not available on our machines, and Debian ships no std for musl targets.
#   - zig (PyPI `ziglang`) is the C compiler and linker, through cargo-zigbuild (PyPI), in a
#     venv: zig builds musl's libc and crt for the exact CPU level, so the ARMv6 binary really is
#     ARMv6 (Debian's armhf gcc would put ARMv7/Thumb-2 start-up code in it: SIGILL on a Pi Zero).
#   - Static musl binaries, profile `release-small` (opt-level s, fat LTO, panic=abort, strip).
#     No TLS stack in any binary (checked with `cargo tree` before building).
#   - Smoke test of every binary under qemu-user: -cpu arm1176 (Pi Zero/1, ARMv6), cortex-a7
#     (Pi 2), cortex-a53 (Zero 2 W/Pi 3). Each starts on loopback (no mDNS), answers
#     GET /v1/status (the dashboard: GET / with its HTML page and GET /api/v1/status, the
#     engine's status relayed) with 200 and exits with status 0 on SIGTERM within a deadline.
#     The sensor agent reads fixture w1 files and its reading must arrive at a real engine (the
#     native x86_64 build) on loopback; the relay agent (--hardware simulated: it has no
#     default) must register with it, saying its backend; the dashboard relays that engine.
#     hearth-provision, which serves nothing, must print its name and version (--version) and
#     its usage (--help) and exit 0.
#
# Results: each stripped binary is copied to <repo>/target/<triple>/release-small/<bin> (where
# `cargo deb --no-build --target <triple> --profile release-small` looks for it), and a table
# (target, binary, stripped size, build time, smoke test) is printed at the end.
#
# Environment (all optional):
#   HEARTH_CROSS_DIR      work dir kept between runs: venv, zig and pip caches, CARGO_HOME, the
#                         cross target dir, logs (default /var/cache/hearth-cross for root,
#                         ~/.cache/hearth-cross, or $XDG_CACHE_HOME/hearth-cross, for anyone
#                         else: only root may write /var/cache; packages are installed with
#                         sudo, the rest runs as the user). It is outside the clone so a fresh
#                         clone (CI) reuses it: a rerun takes seconds instead of ~10 minutes.
#   HEARTH_CROSS_TARGETS  triples (default: the three musl targets below)
#   HEARTH_CROSS_ENGINE_TARGETS  triples that also build the engine host's binaries,
#                         hearth-engine, hearth-web and hearth-provision (default aarch64 musl: the engine's
#                         board is a 64-bit Pi)
#   HEARTH_CROSS_HOST_ENGINE     a native hearth-engine binary used as the engine the agents
#                         report to in the smoke test (default: built with the host's cargo)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -n "${HEARTH_CROSS_DIR:-}" ]; then
  DIR=$HEARTH_CROSS_DIR
elif [ "$(id -u)" = 0 ]; then
  DIR=/var/cache/hearth-cross
else
  DIR=${XDG_CACHE_HOME:-$HOME/.cache}/hearth-cross
fi
TARGETS=${HEARTH_CROSS_TARGETS:-arm-unknown-linux-musleabihf armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl}
ENGINE_HOST_TARGETS=${HEARTH_CROSS_ENGINE_TARGETS:-aarch64-unknown-linux-musl}
AGENTS=(hearth-sensor-agent hearth-relay-agent)
# What runs on the engine's board (built for ENGINE_HOST_TARGETS only): the engine, the
# dashboard, and the SD-card provisioning for the agents' Pis.
ENGINE_HOST=(hearth-engine hearth-web hearth-provision)
PROFILE=release-small
# Pinned: a new zig can change which libc symbols and CPU features it links.
ZIGLANG_VERSION=0.17.0
CARGO_ZIGBUILD_VERSION=0.24.0
# The oldest Debian Rust that builds the workspace (its rust-version, and let-chains).
MIN_RUST=1.95
VENV=$DIR/venv
OUT=$DIR/out
# The host's own cargo (rustup's), for the native engine and `cargo tree`, before build_env
# puts Debian's first on PATH.
HOST_PATH=$PATH
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'cross: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

bins_for() {  # the binaries built for a target
  local t=$1 e
  printf '%s\n' "${AGENTS[@]}"
  for e in $ENGINE_HOST_TARGETS; do [ "$e" = "$t" ] && printf '%s\n' "${ENGINE_HOST[@]}"; done
  return 0
}

qemu_for() {  # the qemu-user command emulating the Pi's CPU for a target
  case $1 in
    arm-*) echo "qemu-arm-static -cpu arm1176" ;;        # Pi Zero / Zero W / 1 (ARMv6)
    armv7-*) echo "qemu-arm-static -cpu cortex-a7" ;;    # Pi 2 (and 3 in 32-bit mode)
    aarch64-*) echo "qemu-aarch64-static -cpu cortex-a53" ;;  # Pi Zero 2 W / 3
    *) die "no qemu CPU model known for $1" ;;
  esac
}

# ---------------------------------------------------------------- work dir
check_dir() {  # the work dir and everything in it must be this user's to write: say so at once
  local me bad
  me=$(id -un)
  if ! mkdir -p "$DIR" 2>/dev/null || [ ! -w "$DIR" ]; then
    die "the work dir $DIR is not writable by $me. Fix: \`sudo chown -R $me '$DIR'\`, or \
HEARTH_CROSS_DIR=<a directory of yours> (the default for a user other than root is \
\${XDG_CACHE_HOME:-~/.cache}/hearth-cross)"
  fi
  # An earlier run as another user (root) leaves its directories behind.
  bad=$(find "$DIR" -maxdepth 2 ! -writable -print -quit 2>/dev/null || true)
  if [ -n "$bad" ]; then
    die "$bad in the work dir is not writable by $me (left by an earlier run as another user). \
Fix: \`sudo chown -R $me '$DIR'\`, or HEARTH_CROSS_DIR=<another directory>"
  fi
}

# ---------------------------------------------------------------- install
pkg_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

apt_install() {
  local missing
  missing=$(pkg_missing "$@" | tr "\n" " ")
  missing=${missing% }
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || die "install $missing (Debian packages) first"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  log "apt-get install $missing"
  # An unrelated broken index makes `apt-get update` fail; apt-get install then decides.
  "${sudo[@]}" apt-get update -q || echo "cross: WARNING: apt-get update reported errors (continuing)"
  # shellcheck disable=SC2086
  "${sudo[@]}" apt-get install -y -q --no-install-recommends $missing
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

do_install() {
  local t0; t0=$(now)
  # rustc-web, cargo-web and rust-web-src are installed together so apt picks one version.
  # No binutils: the x86_64 `strip` cannot read ARM binaries; the release-small profile strips
  # at link time, and `file` checks the result.
  apt_install rustc-web cargo-web rust-web-src qemu-user-static python3-venv curl \
    ca-certificates file
  local vr vc vs
  vr=$(dpkg-query -W -f='${Version}' rustc-web)
  vc=$(dpkg-query -W -f='${Version}' cargo-web)
  vs=$(dpkg-query -W -f='${Version}' rust-web-src)
  # build-std compiles exactly this source with this compiler: they must be the same release.
  if [ "$vr" != "$vs" ] || [ "$vr" != "$vc" ]; then
    die "rustc-web ($vr), cargo-web ($vc) and rust-web-src ($vs) differ: run
  apt-get install rustc-web=$vr cargo-web=$vr rust-web-src=$vr"
  fi
  version_ge "${vr%%+*}" "$MIN_RUST" || die "Debian's rustc-web is $vr; the workspace needs \
$MIN_RUST or newer (bookworm-security has it: apt-get update && apt-get install rustc-web cargo-web rust-web-src)"
  [ -f "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/Cargo.lock" ] \
    || die "std source not found under $(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust (reinstall rust-web-src)"

  mkdir -p "$DIR/cache"
  export XDG_CACHE_HOME=$DIR/cache
  if ! { [ -x "$VENV/bin/cargo-zigbuild" ] \
      && "$VENV/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIGLANG_VERSION" \
      && "$VENV/bin/cargo-zigbuild" --version 2>/dev/null | grep -q " $CARGO_ZIGBUILD_VERSION\$"; }; then
    log "pip install ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION into $VENV"
    [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  fi
  echo "rustc $(/usr/bin/rustc -V | cut -d' ' -f2) (Debian $vr), zig $("$VENV/bin/python" -m ziglang version)," \
    "$("$VENV/bin/cargo-zigbuild" --version), $(qemu-arm-static --version | head -1)"
  log "install done in $(secs "$t0" "$(now)") s"
}

# ---------------------------------------------------------------- build
build_env() {  # Debian's toolchain and zig, caches in the work dir (called in subshells)
  export XDG_CACHE_HOME=$DIR/cache              # pip, cargo-zigbuild's wrapper scripts
  export ZIG_GLOBAL_CACHE_DIR=$DIR/cache/zig    # zig's libc/crt builds, per target: keep them
  export CARGO_HOME=$DIR/cargo-home             # registry and sources for Debian's cargo
  export PATH=$VENV/bin:/usr/bin:/bin           # Debian's cargo/rustc, never rustup's proxies
  export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  export RUSTC_BOOTSTRAP=1                      # lets the stable rustc-web use -Zbuild-std
  # These would replace the per-target flags below; CARGO_TARGET_DIR would mix the host
  # toolchain's fingerprints with Debian's.
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_TARGET_DIR \
    CARGO_BUILD_TARGET RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
}

check_no_tls() {  # no OpenSSL or other TLS stack may reach any binary, on any target
  local tree bad
  tree=$(cd "$REPO" && PATH=$HOST_PATH cargo tree --locked -e normal,build --target all \
      -p hearth-sensor-agent -p hearth-relay-agent -p hearth-engine -p hearth-web \
      -p hearth-provision --prefix none) \
    || die "cargo tree failed (the host's cargo is needed for this check)"
  bad=$(awk '{print $1}' <<<"$tree" | sort -u \
    | grep -E '^(openssl|openssl-sys|native-tls|hyper-tls|rustls|ring|aws-lc-rs|aws-lc-sys)$' || true)
  [ -z "$bad" ] || die "TLS crates in the dependency tree (the binaries must have none): $bad"
  echo "cargo tree: no openssl, native-tls, rustls, ring or aws-lc in any binary"
}

build_target() (  # subshell: build_env stays inside
  local t=$1 key pkgs=() b
  build_env
  key=$(echo "$t" | tr 'a-z-' 'A-Z_')
  # zig supplies musl's crt and libc; rustc's self-contained copies would clash with them.
  export "CARGO_TARGET_${key}_RUSTFLAGS=-C link-self-contained=no"
  while read -r b; do pkgs+=(-p "$b"); done < <(bins_for "$t")
  cd "$REPO"
  cargo-zigbuild build --locked --profile "$PROFILE" -Zbuild-std=std,panic_abort \
    --target "$t" "${pkgs[@]}" --bins --target-dir "$DIR/target"
)

do_build() {
  [ -x "$VENV/bin/cargo-zigbuild" ] || die "no cargo-zigbuild in $VENV: run '$0 install' first"
  check_no_tls
  mkdir -p "$OUT"
  : > "$OUT/build.tsv"
  local t b t0 dt src dst size
  for t in $TARGETS; do
    log "build $t: $(bins_for "$t" | tr '\n' ' ')"
    t0=$(now)
    build_target "$t" || die "cross build for $t failed (log above); rerun: $0 build"
    dt=$(secs "$t0" "$(now)")
    while read -r b; do
      src=$DIR/target/$t/$PROFILE/$b
      [ -x "$src" ] || die "cargo reported success but $src is missing"
      # The profile strips at link time; check, since a lost strip triples the size.
      if file -b "$src" | grep -q 'not stripped'; then die "$src is not stripped"; fi
      file -b "$src" | grep -Eq 'statically linked|static-pie linked' || die "$src is not statically linked: $(file -b "$src")"
      dst=$REPO/target/$t/$PROFILE/$b
      mkdir -p "$(dirname "$dst")"
      cp -f "$src" "$dst"
      size=$(stat -c %s "$dst")
      printf '%s\t%s\t%s\t%s\n' "$t" "$b" "$size" "$dt" >> "$OUT/build.tsv"
      echo "  $dst  $size bytes  ($(file -b "$dst" | cut -d, -f1-3))"
    done < <(bins_for "$t")
    echo "built $t in $dt s"
  done
}

# ---------------------------------------------------------------- smoke test under qemu
# Started processes, stopped on exit (by pid only).
STARTED=()
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

start_bg() {  # start_bg LOG CMD... : start in the background, record the pid in $BG_PID
  local logf=$1; shift
  RUST_LOG=info NO_COLOR=1 "$@" >"$logf" 2>&1 </dev/null &
  BG_PID=$!
  STARTED+=("$BG_PID")
}

wait_addr() {  # wait_addr LOG PID WHAT : print ADDR from its "listening on http://ADDR" line
  local logf=$1 pid=$2 what=$3 addr deadline=$((SECONDS + 90))
  while [ "$SECONDS" -lt "$deadline" ]; do
    addr=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$logf" 2>/dev/null | head -1 | sed 's|.*http://||' || true)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "cross: $what exited before listening; its log:" >&2; sed 's/^/  | /' "$logf" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "cross: $what did not listen within 90 s; its log:" >&2; sed 's/^/  | /' "$logf" >&2
  return 1
}

http_status() {  # http_status URL BODYFILE : prints the HTTP status (000: no answer)
  curl -sS -m 20 -o "$2" -w '%{http_code}' "$1" 2>/dev/null || true
}

poll_until() {  # poll_until SECONDS CMD... : run CMD until it succeeds or the deadline passes
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

stop_clean() {  # stop_clean PID WHAT LOG : SIGTERM, then require exit status 0 within 30 s
  local pid=$1 what=$2 logf=$3 rc=0 deadline=$((SECONDS + 30))
  kill -TERM "$pid" 2>/dev/null || { echo "cross: $what was already gone" >&2; return 1; }
  while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "cross: $what did not exit within 30 s of SIGTERM; its log:" >&2; sed 's/^/  | /' "$logf" >&2
      return 1
    fi
    sleep 0.1
  done
  wait "$pid" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "cross: $what exited with status $rc after SIGTERM; its log:" >&2; sed 's/^/  | /' "$logf" >&2
    return 1
  fi
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo '?'; }

W1_FIXTURE=$'58 01 4b 46 7f ff 08 10 3c : crc=3c YES\n58 01 4b 46 7f ff 08 10 3c t=21500\n'

sensor_arrived() {  # sensor_arrived ENGINE_URL SENSOR_ID HOST_ID VALUE
  curl -fsS -m 10 "$1/v1/sensors" 2>/dev/null | python3 -c '
import json, sys
sid, host, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    data = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
items = data if isinstance(data, list) else data.get("sensors", data.get("items", []))
ok = any(s.get("id") == sid and s.get("host_id") == host
         and ((s.get("latest") or {}).get("value")) == value for s in items)
sys.exit(0 if ok else 1)' "$2" "$3" "$4"
}

relay_registered() {  # relay_registered ENGINE_URL HOST_ID: listed, and its backend said
  local body
  body=$(curl -fsS -m 10 "$1/v1/relays" 2>/dev/null) || return 1
  printf '%s' "$body" | grep -q "\"$2\"" && printf '%s' "$body" | grep -q '"backend":"simulated"'
}

# The dashboard: its page (embedded in the binary) and the engine's status relayed through it.
smoke_web() {  # smoke_web ADDR FILE_PREFIX LOG
  local addr=$1 f=$2 logf=$3 code
  code=$(http_status "http://$addr/" "$f.index.html")
  if [ "$code" != 200 ] || ! grep -qi '<html' "$f.index.html"; then
    echo "cross: GET http://$addr/ answered $code (want 200 and an HTML page); body and log:" >&2
    head -c 300 "$f.index.html" >&2; echo >&2; sed 's/^/  | /' "$logf" >&2
    return 1
  fi
  echo "GET / -> 200, an HTML page of $(stat -c %s "$f.index.html") bytes"
  code=$(http_status "http://$addr/api/v1/status" "$f.status.json")
  if [ "$code" != 200 ] || ! grep -q '"service":"hearth-engine"' "$f.status.json"; then
    echo "cross: GET http://$addr/api/v1/status answered $code (want 200 with the engine's status); body and log:" >&2
    head -c 300 "$f.status.json" >&2; echo >&2; sed 's/^/  | /' "$logf" >&2
    return 1
  fi
  echo "GET /api/v1/status -> 200 (the native engine's, relayed) $(head -c 300 "$f.status.json")"
}

# A program that serves nothing (hearth-provision): `--version` prints its name and version,
# `--help` its usage, each exiting 0 under the Pi's CPU. (What it writes to an image is tested
# natively: it needs the host's mtools and debugfs, not qemu.)
smoke_cli() {  # smoke_cli TARGET BIN QEMU EXE LOG
  local t=$1 b=$2 q=$3 exe=$4 logf=$5 version
  echo "--- $t $b: $q $(basename "$exe") --version; --help"
  # shellcheck disable=SC2086
  if ! version=$($q "$exe" --version 2>"$logf") || ! [[ $version =~ ^$b\ [0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "cross: $b --version printed '$version' (want '$b <version>'); stderr:" >&2; sed 's/^/  | /' "$logf" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  if ! $q "$exe" --help >"$logf" 2>&1 || ! grep -q "^Usage: $b " "$logf"; then
    echo "cross: $b --help failed or printed no usage; it said:" >&2; sed 's/^/  | /' "$logf" >&2
    return 1
  fi
  echo "--version -> $version; --help -> $(grep -m1 '^Usage: ' "$logf")"
  printf '%s\t%s\tPASS\t-\n' "$t" "$b" >> "$OUT/smoke.tsv"
}

# One binary under qemu. Appends "target bin result rss" to smoke.tsv; returns non-zero on failure.
smoke_one() {
  local t=$1 b=$2 q exe tag logf pid addr code args=() rss
  q=$(qemu_for "$t")
  exe=$REPO/target/$t/$PROFILE/$b
  [ -x "$exe" ] || { echo "cross: $exe missing: run '$0 build' first" >&2; return 1; }
  tag=${t%%-*}
  logf=$WORK/$t-$b.log
  if [ "$b" = hearth-provision ]; then
    smoke_cli "$t" "$b" "$q" "$exe" "$logf"
    return
  fi
  case $b in
    hearth-sensor-agent)
      local host=smoke-$tag-sensor sensor w1 key
      # A distinct sensor id per target: the reading in the engine can only be this binary's.
      case $tag in arm) sensor=28-0000000a0006 ;; armv7) sensor=28-0000000a0007 ;; *) sensor=28-0000000a0064 ;; esac
      w1=$WORK/$t-w1
      mkdir -p "$w1/$sensor" "$w1/w1_bus_master1"
      printf '%s' "$W1_FIXTURE" > "$w1/$sensor/w1_slave"
      printf '%s\n' "$sensor" > "$w1/w1_bus_master1/w1_master_slaves"
      key=$("$HOST_ENGINE" --data-dir "$WORK/engine" device-key --role sensor "$host")
      args=(--engine "$ENGINE_URL" --host-id "$host" --device-key "$key" --hardware w1
            --w1-dir "$w1" --interval-s 0.5 --queue-dir "$WORK/$t-queue"
            --status-listen 127.0.0.1:0) ;;
    hearth-relay-agent)
      local host=smoke-$tag-relay key
      key=$("$HOST_ENGINE" --data-dir "$WORK/engine" device-key --role relay "$host")
      args=(--engine "$ENGINE_URL" --host-id "$host" --device-key "$key" --hardware simulated
            --listen 127.0.0.1:0 --sim-world "$WORK/$t-world.json") ;;
    hearth-engine)
      args=(--mdns false --listen 127.0.0.1:0 --data-dir "$WORK/$t-engine") ;;
    hearth-web)
      # Pointed at the native engine: no mDNS, and its relayed API has something to relay.
      args=(--listen 127.0.0.1:0 --engine "$ENGINE_URL") ;;
    *) echo "cross: no smoke test for $b" >&2; return 1 ;;
  esac
  local shown=() a prev=
  for a in "${args[@]}"; do  # the device key stays out of the log
    if [ "$prev" = --device-key ]; then shown+=("<key>"); else shown+=("$a"); fi
    prev=$a
  done
  echo "--- $t $b: $q $(basename "$exe") ${shown[*]}"
  # shellcheck disable=SC2086
  start_bg "$logf" $q "$exe" "${args[@]}"
  pid=$BG_PID
  addr=$(wait_addr "$logf" "$pid" "$b ($t)") || return 1
  if [ "$b" = hearth-web ]; then
    smoke_web "$addr" "$WORK/$t-$b" "$logf" || return 1
  else
    code=$(http_status "http://$addr/v1/status" "$WORK/$t-$b.status.json")
    if [ "$code" != 200 ]; then
      echo "cross: GET http://$addr/v1/status answered $code (want 200); log:" >&2; sed 's/^/  | /' "$logf" >&2
      return 1
    fi
    echo "GET /v1/status -> 200 $(head -c 300 "$WORK/$t-$b.status.json")"
  fi
  case $b in
    hearth-sensor-agent)
      if ! poll_until 90 sensor_arrived "$ENGINE_URL" "$sensor" "$host" 21.5; then
        echo "cross: the engine has no reading 21.5 of $sensor from $host; engine says:" >&2
        curl -sS -m 10 "$ENGINE_URL/v1/sensors" >&2 || true; sed 's/^/  | /' "$logf" >&2
        return 1
      fi
      echo "engine GET /v1/sensors: $sensor = 21.5 from $host (fixture w1_slave)"
      # The status page now shows the read and the engine in use.
      http_status "http://$addr/v1/status" "$WORK/$t-$b.status.json" >/dev/null
      echo "GET /v1/status -> $(head -c 300 "$WORK/$t-$b.status.json")" ;;
    hearth-relay-agent)
      if ! poll_until 90 relay_registered "$ENGINE_URL" "$host"; then
        echo "cross: $host never registered with the engine; log:" >&2; sed 's/^/  | /' "$logf" >&2
        return 1
      fi
      echo "engine GET /v1/relays lists $host (registered, backend simulated)" ;;
  esac
  rss=$(rss_kib "$pid")
  stop_clean "$pid" "$b ($t)" "$logf" || return 1
  echo "SIGTERM -> exit 0    (qemu process RSS ${rss} KiB, emulator included)"
  printf '%s\t%s\tPASS\t%s\n' "$t" "$b" "$rss" >> "$OUT/smoke.tsv"
}

do_smoke() {
  local t b fails=0 t0; t0=$(now)
  command -v qemu-arm-static >/dev/null || die "qemu-user-static missing: run '$0 install'"
  mkdir -p "$OUT"
  : > "$OUT/smoke.tsv"
  trap cleanup EXIT
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/hearth-cross-smoke.XXXXXX")
  HOST_ENGINE=${HEARTH_CROSS_HOST_ENGINE:-}
  if [ -z "$HOST_ENGINE" ]; then
    log "build the native engine (the agents' stand-in engine on loopback)"
    (cd "$REPO" && PATH=$HOST_PATH cargo build --locked -q -p hearth-engine --bin hearth-engine)
    HOST_ENGINE=${CARGO_TARGET_DIR:-$REPO/target}/debug/hearth-engine
  fi
  [ -x "$HOST_ENGINE" ] || die "no native hearth-engine at $HOST_ENGINE"
  start_bg "$WORK/engine.log" "$HOST_ENGINE" --mdns false --listen 127.0.0.1:0 --data-dir "$WORK/engine"
  local engine_pid=$BG_PID addr
  addr=$(wait_addr "$WORK/engine.log" "$engine_pid" "native hearth-engine") || die "the stand-in engine did not start"
  ENGINE_URL=http://$addr
  log "smoke tests under qemu-user; stand-in engine (native) at $ENGINE_URL"
  for t in $TARGETS; do
    while read -r b; do
      if smoke_one "$t" "$b"; then
        echo "PASS $t $b"
      else
        echo "FAIL $t $b"
        printf '%s\t%s\tFAIL\t-\n' "$t" "$b" >> "$OUT/smoke.tsv"
        fails=$((fails + 1))
      fi
    done < <(bins_for "$t")
  done
  stop_clean "$engine_pid" "native hearth-engine" "$WORK/engine.log" || fails=$((fails + 1))
  if [ "$fails" = 0 ]; then rm -rf "$WORK"; else echo "cross: logs kept in $WORK" >&2; fi
  log "smoke tests done in $(secs "$t0" "$(now)") s"
  [ "$fails" = 0 ] || die "$fails qemu smoke test(s) failed (see FAIL lines and logs above)"
}

# ---------------------------------------------------------------- table
do_table() {
  [ -s "$OUT/build.tsv" ] || die "nothing built yet: run '$0 build'"
  echo
  printf '%-32s %-20s %10s %7s %8s %-6s\n' target binary bytes MB build_s qemu
  local t b size dt result
  while IFS=$'\t' read -r t b size dt; do
    result=$(awk -F'\t' -v t="$t" -v b="$b" '$1 == t && $2 == b {print $3}' "$OUT/smoke.tsv" 2>/dev/null || true)
    printf '%-32s %-20s %10s %7s %8s %-6s\n' "$t" "$b" "$size" \
      "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1000000 }')" "$dt" "${result:--}"
  done < "$OUT/build.tsv"
  echo "(stripped, static, profile $PROFILE; build_s is the target's whole cargo build; qemu CPUs:" \
    "arm1176 for arm, cortex-a7 for armv7, cortex-a53 for aarch64)"
}

T_ALL=$(now)
case ${1:-all} in
  check) check_dir; echo "$DIR" ;;
  install) check_dir; do_install ;;
  build) check_dir; do_build; do_table ;;
  smoke) check_dir; do_smoke; do_table ;;
  build-smoke)
    check_dir
    do_build
    do_smoke
    do_table
    echo "cross build + smoke took $(secs "$T_ALL" "$(now)") s" ;;
  table) do_table ;;
  all)
    check_dir
    do_install
    do_build
    do_smoke
    do_table
    echo "cross path (install + build + smoke) took $(secs "$T_ALL" "$(now)") s" ;;
  *) die "usage: $0 [install|build|smoke|all|table|check|build-smoke]" ;;
esac
