#!/usr/bin/env bash
# Installs what building, training and testing need on a fresh Debian machine of this project's kind:
# the Fashion-MNIST data set (Debian package dataset-fashion-mnist), the font the plots name (fonts-dejavu-core: without
# it SkiaSharp draws plots with no text), Chromium (the tests render a sweep's HTML report headless) and redis-server
# (the cluster script test runs a Redis-clustered sweep on loopback; the tests start their own server). With
# arguments, installs those Debian packages instead. Idempotent: installs only what is missing.
set -euo pipefail
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(dataset-fashion-mnist fonts-dejavu-core chromium redis-server)
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
