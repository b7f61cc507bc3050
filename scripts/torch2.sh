#!/usr/bin/env bash
# Tests smoothce against a second LibTorch: Debian 13 ("trixie") ships libtorch-dev 2.6 and python3-torch 2.6
# (the oracle). This script keeps a trixie chroot on the machine (built once with debootstrap, then reused),
# copies this checkout into it (tracked and untracked-but-not-ignored files, and ../shared), installs
# node_modules with the chroot's npm, builds the addon against LibTorch 2.6 and runs the version-sensitive
# suites there. Needs root (chroot and mounts) and, for the first build only, Debian's mirror.
#
#   bash scripts/torch2.sh                 the version-sensitive suites (what .ci/run runs)
#   bash scripts/torch2.sh --full          the whole `npm test` inside the chroot
#   bash scripts/torch2.sh test/x.test.ts  only these test files
#   bash scripts/torch2.sh --shell         an interactive shell in the chroot's copy (after building)
#   bash scripts/torch2.sh --run 'CMD'     one shell command in the chroot's copy (after building), e.g.
#                                          --run 'node bench/small-calls.js' to compare small calls with the host
#
#   SMOOTHCE_TRIXIE=/path     where the chroot lives (default /var/cache/smoothce-trixie, about 3.5 GB)
#   SMOOTHCE_TORCH2_JOBS=N    vitest workers inside the chroot (default: vitest's own default)
#   SMOOTHCE_TRIXIE_MIRROR=URL  the Debian mirror for debootstrap (default: the one apt uses here, found by
#                             scripts/apt-mirror.sh, else http://deb.debian.org/debian)
#
# Idempotent: every step checks what is already there. Mounts it makes are undone on exit; a lock keeps two
# runs from sharing one chroot at once.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
R=${SMOOTHCE_TRIXIE:-/var/cache/smoothce-trixie}
T0=$(date +%s)

step() { printf '\n==> [torch2 %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
ok() { printf '    %s\n' "$*"; }
die() { printf 'torch2.sh: %s\n' "$*" >&2; exit 1; }

# The suites whose expectations depend on the LibTorch / oracle version, or that exercise code paths that
# differ between versions (the ATen shortcuts, threads, distributed, small-call cost).
SUITES=(
  test/oracle.test.ts test/golden.test.ts test/fused-golden.test.ts test/fused.test.ts
  test/parity-cases.test.ts test/parity-cli.test.ts test/aten-fast.test.ts test/reference.test.ts
  test/distributed.test.ts test/async.test.ts test/lifetime.test.ts test/threads.test.ts
  test/validation.test.ts test/smoke.test.ts test/soak.test.ts test/linear-cross-entropy.test.ts
)
MODE=suites
case "${1:-}" in
  --full) MODE=full; shift ;;
  --shell) MODE=shell; shift ;;
  --run) MODE=run; RUN_CMD=${2:?--run needs a command}; shift 2 ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  "") ;;
  *) SUITES=("$@") ;;
esac

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts); run it as root or with sudo"
command -v flock >/dev/null || die "needs flock (util-linux)"
command -v git >/dev/null || die "needs git (to list this checkout's files)"

mkdir -p "$(dirname "$R")"
exec 9>"$R.lock"
flock -w 1800 9 || die "another torch2.sh holds $R.lock"

# ---- mounts (only the ones this run makes are undone) --------------------------------------------------
MOUNTED=()
cleanup() {
  local rc=$? i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "$R/${MOUNTED[i]}" 2>/dev/null || umount -l "$R/${MOUNTED[i]}" || true; done
  printf '\n==> [torch2 %4ss] %s\n' "$(($(date +%s) - T0))" "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount_all() {
  local m
  for m in proc sys dev dev/pts dev/shm; do
    mkdir -p "$R/$m"
    mountpoint -q "$R/$m" && continue
    case $m in
      proc) mount -t proc proc "$R/proc" ;;
      sys) mount -t sysfs sys "$R/sys" ;;
      dev) mount --bind /dev "$R/dev" ;;
      dev/pts) mount --bind /dev/pts "$R/dev/pts" ;;
      dev/shm) mount -t tmpfs shm "$R/dev/shm" ;;
    esac
    MOUNTED+=("$m")
  done
}
in_chroot() {
  chroot "$R" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI=true TERM="${TERM:-dumb}" CCACHE_DIR=/var/cache/smoothce-ccache CCACHE_BASEDIR=/src \
    CCACHE_MAXSIZE=2G "$@"
}

# ---- the chroot (once) ---------------------------------------------------------------------------------
PACKAGES=(python3-torch python3-numpy python3-setuptools libtorch-dev libgloo-dev nodejs npm cmake g++ make git
  ca-certificates fonts-dejavu-core fontconfig-config ccache)
READY="$R/etc/smoothce-torch2-ready"
probe() {
  in_chroot sh -c 'command -v node && command -v npm && command -v cmake && command -v g++ && command -v ccache &&
    ls /usr/lib/*/cmake/Torch/TorchConfig.cmake && test -f /usr/include/gloo/config.h &&
    python3 -c "import torch, numpy, setuptools"' >/dev/null 2>&1
}
step "Debian trixie chroot at $R"
if [ -f "$READY" ]; then
  mount_all
  ok "present ($(cat "$READY"))"
else
  if [ ! -x "$R/usr/bin/apt-get" ]; then
    if ! command -v debootstrap >/dev/null; then
      ok "apt-get install debootstrap"
      # A machine that has never run apt-get update has no package lists: update once, then retry.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null 2>&1 || {
        apt-get update -qq -o DPkg::Lock::Timeout=600 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null
      } || die "could not install debootstrap with apt-get"
    fi
    # scripts/apt-mirror.sh reads deb822 and one-line sources, whichever exist, and never fails.
    # shellcheck source=scripts/apt-mirror.sh
    . "$SRC/scripts/apt-mirror.sh"
    MIRROR=${SMOOTHCE_TRIXIE_MIRROR:-$(apt_mirror /etc/apt)}
    ok "debootstrap --variant=minbase trixie from $MIRROR"
    debootstrap --variant=minbase trixie "$R" "$MIRROR" >"$R.debootstrap.log" 2>&1 ||
      { tail -30 "$R.debootstrap.log"; die "debootstrap failed (log: $R.debootstrap.log)"; }
  fi
  mount_all
  if ! probe; then
    ok "apt-get install ${PACKAGES[*]}"
    in_chroot apt-get update -qq
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  fi
  # npm over TLS: the host's extra CA certificates, if any.
  cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
  in_chroot update-ca-certificates >/dev/null 2>&1 || true
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\n' >"$R/root/.npmrc"
  probe || die "the chroot lacks a tool after apt-get install (node, npm, cmake, g++, ccache, LibTorch, gloo or torch)"
  echo "libtorch-dev $(in_chroot dpkg-query -W -f='${Version}' libtorch-dev), nodejs $(in_chroot node --version)" >"$READY"
  ok "ready: $(cat "$READY")"
fi

# ---- this checkout, copied in ----------------------------------------------------------------------------
DEST=$R/src/smoothce
step "Copy this checkout to $DEST (and ../shared to $R/src/shared)"
mkdir -p "$DEST"
# Everything but the cached node_modules goes: the copy is exactly this checkout's files.
find "$DEST" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$DEST"
rm -rf "$R/src/shared"
if [ -d ../shared ]; then cp -a ../shared "$R/src/shared"; ok "$(git rev-parse --short HEAD) + ../shared"; else ok "$(git rev-parse --short HEAD) (no ../shared)"; fi

step "node_modules (npm ci with the chroot's npm; cached by package-lock.json and Node version)"
KEY="$(sha256sum package-lock.json | cut -c1-16)-$(in_chroot node --version)"
if [ "$(cat "$DEST/node_modules/.smoothce-torch2-key" 2>/dev/null)" = "$KEY" ]; then
  ok "cached ($KEY)"
else
  rm -rf "$DEST/node_modules"
  in_chroot sh -c 'cd /src/smoothce && SMOOTHCE_SKIP_INSTALL=1 ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error' ||
    die "npm ci failed inside the chroot"
  echo "$KEY" >"$DEST/node_modules/.smoothce-torch2-key"
  ok "installed ($KEY)"
fi

step "Build the addon against the chroot's LibTorch (ccache) and the TypeScript"
if ! in_chroot sh -c 'cd /src/smoothce && CMAKE_CXX_COMPILER_LAUNCHER=ccache npx cmake-js compile --log-level warn' \
  >"$R/src/build.log" 2>&1; then
  tail -60 "$R/src/build.log"
  die "the build failed (full log: $R/src/build.log)"
fi
in_chroot sh -c 'cd /src/smoothce && npm run --silent build:ts >/dev/null'
ok "$(in_chroot sh -c 'cd /src/smoothce && node -e "const s=require(\"./dist/index.js\"); console.log(\"LibTorch\", s.torchVersion())" && python3 -c "import torch; print(\"oracle torch\", torch.__version__)"' | tr '\n' ' ')"
ok "ccache: $(in_chroot ccache -s 2>/dev/null | grep -iE 'hits' | head -1 | tr -s ' ')"

case $MODE in
  shell)
    step "Shell in /src/smoothce (exit to unmount)"
    in_chroot sh -c 'cd /src/smoothce && exec bash -i' || true
    exit 0 ;;
  run)
    step "Run in /src/smoothce: $RUN_CMD"
    in_chroot bash -c "cd /src/smoothce && $RUN_CMD" ;;
  full)
    step "npm test (the whole suite) on LibTorch $(in_chroot sh -c 'cd /src/smoothce && node -p "require(\"./dist/index.js\").torchVersion()"')"
    in_chroot sh -c "cd /src/smoothce && npx vitest run ${SMOOTHCE_TORCH2_JOBS:+--maxWorkers=$SMOOTHCE_TORCH2_JOBS}" ;;
  suites)
    step "The version-sensitive suites: ${SUITES[*]}"
    in_chroot sh -c "cd /src/smoothce && npx vitest run ${SMOOTHCE_TORCH2_JOBS:+--maxWorkers=$SMOOTHCE_TORCH2_JOBS} ${SUITES[*]}" ;;
esac
