#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine: system packages, then the locked npm tree.
set -euo pipefail
cd "$(dirname "$0")/.."

# openssl: the TLS tests make certificates with it. g++, make, python3: node-gyp builds the native
# addons from their registry sources (hnswlib-node always; better-sqlite3 when its prebuilt binary
# cannot be downloaded). python3-numpy: a test reads fedclr's embeddings files with numpy.
# libblis-serial-dev: BLIS (serial), linked statically into @fedclr/tensor's native convolution
# kernels (several times the wasm speed); nothing else on the machine changes BLAS because of it.
# chromium: the dashboard's browser test drives Debian's chromium through playwright-core
# (executablePath /usr/bin/chromium), never a downloaded browser.
apt_packages=(dataset-fashion-mnist openssl g++ make python3 python3-numpy libblis-serial-dev chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

# tfjs-node is optional: its install script downloads libtensorflow, which fails offline; npm
# then drops it and the wasm backend is used.
npm ci --no-audit --no-fund
npm run build:native
npm run build
