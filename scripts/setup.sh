#!/usr/bin/env bash
# Sets up everything smoothce needs on Debian 12 (or any machine with LibTorch), then
# builds it. Idempotent: each step says what it does, and skips what is already there.
#   LIBTORCH=/path/to/libtorch  use that LibTorch; no apt packages are installed
#   SMOOTHCE_SKIP_APT=1         never call apt-get
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

apt_install() {
  if [ -n "${SMOOTHCE_SKIP_APT:-}" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "    cannot install $* here (no apt-get, or SMOOTHCE_SKIP_APT set): install them yourself" >&2
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    ok "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  ok "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "Build tools (cmake, g++, make)"
missing=()
for tool in cmake g++ make; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt_install cmake g++ make
else
  ok "present: $(cmake --version | head -1), $(g++ --version | head -1)"
fi

step "LibTorch"
if [ -n "${LIBTORCH:-}" ]; then
  ok "LIBTORCH=$LIBTORCH (no apt packages installed)"
elif [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] || [ -f /usr/lib/aarch64-linux-gnu/cmake/Torch/TorchConfig.cmake ]; then
  ok "Debian's libtorch-dev is installed ($(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null || echo '?'))"
else
  apt_install libtorch-dev
fi

step "Gloo headers (libgloo-dev: distributed metrics over c10d)"
if [ -n "${LIBTORCH:-}" ]; then
  ok "skipped with LIBTORCH set (the build enables c10d/Gloo when it finds gloo/config.h)"
elif [ -f /usr/include/gloo/config.h ]; then
  ok "present"
else
  apt_install libgloo-dev
fi

step "Python oracle (/usr/bin/python3 with torch, for the parity tests and fixtures)"
if [ -n "${LIBTORCH:-}" ]; then
  ok "skipped with LIBTORCH set; the oracle tests say so when they cannot run"
elif /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
  ok "torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
else
  apt_install python3-torch python3-numpy
fi
if [ -z "${LIBTORCH:-}" ]; then
  # scipy and scikit-learn: references for the recalibrator tests (test/recalibrators.test.ts).
  if /usr/bin/python3 -c 'import scipy, sklearn' >/dev/null 2>&1; then
    ok "scipy and scikit-learn present"
  else
    apt_install python3-scipy python3-sklearn || true
  fi
fi

step "Node packages (npm ci)"
if [ -d node_modules ] && [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  ok "node_modules is up to date"
else
  # The package's own install hook would compile too; the next step does that once.
  # onnxruntime-node (a dev dependency) ships its CPU binaries; skip its GPU-binary download.
  SMOOTHCE_SKIP_INSTALL=1 ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi

step "Native addon (scripts/prebuild.js: CMake, incremental; a first build takes minutes)"
# Shows the compiler's progress lines, and a line every 15 s with the time elapsed; the full
# log is build/smoothce-build.log (in this checkout, not a shared temporary folder). The
# result is copied to prebuilds/<platform>-<arch>/ (with the hash of the sources it was built
# from), so that `npm pack` right after this ships a fresh, loadable prebuild.
node scripts/prebuild.js
ok "build/Release/smoothce.node ($(node -e "console.log(require('./build/Release/smoothce.node').torchVersion())" 2>/dev/null || echo 'does not load'))"

step "TypeScript (tsc -> dist/)"
npm run --silent build:ts
ok "dist/index.js, dist/index.mjs, dist/cli.js"

step "Done"
ok "next: npm test"
