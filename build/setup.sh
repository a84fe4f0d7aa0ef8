#!/usr/bin/env bash
# Installs what building, training and testing need on a fresh Debian machine of this project's kind:
# the Fashion-MNIST data set (Debian package dataset-fashion-mnist). Idempotent: installs only what is missing.
set -euo pipefail
packages=(dataset-fashion-mnist)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing ${missing[*]} ..." >&2
  # Wait for another apt/dpkg process rather than fail on its lock.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v dotnet >/dev/null || { echo "The .NET SDK (dotnet) is required: https://dot.net" >&2; exit 1; }
# ONNX Runtime for the ONNX export tests: onnxruntime-node (its CPU runtime ships inside the npm package), pinned by
# test/onnxruntime/package-lock.json. ONNXRUNTIME_NODE_INSTALL=skip stops its install script from fetching the
# optional CUDA provider, which the tests do not use.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -d "$root/test/onnxruntime/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || { echo "npm (Node.js 20 or later) is required for the ONNX export tests: install Debian's nodejs and npm." >&2; exit 1; }
  echo "Installing test/onnxruntime (onnxruntime-node) ..." >&2
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix "$root/test/onnxruntime" --no-audit --no-fund >&2
fi
