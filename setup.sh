#!/usr/bin/env bash
# Sets moekit up on a fresh Debian/Ubuntu machine: OpenBLAS (for the native kernel core) and Chromium
# (the dashboard's browser tests drive it through playwright-core: no browser download), then the npm
# dependencies, the native addon, the TypeScript build and the dashboard's build (npm ci runs them all).
set -euo pipefail
cd "$(dirname "$0")"
if ! [ -e /usr/include/x86_64-linux-gnu/cblas.h ] && ! [ -e /usr/include/cblas.h ] && ! ls /usr/include/*/cblas.h >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing libopenblas-dev (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q libopenblas-dev >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libopenblas-dev >/dev/null; }
fi
if ! [ -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing chromium (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
# --omit=optional: node-llama-cpp (a devDependency, the GGUF round-trip test) would otherwise fetch its CUDA and Vulkan
# builds; its CPU binary and the native bindings vite needs are direct devDependencies, so they still install.
npm ci --omit=optional --no-audit --no-fund
