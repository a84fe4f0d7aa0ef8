#!/usr/bin/env bash
# PyTorch (CPU, OpenBLAS) side-by-side reference benchmark.
#
# Usage: build/bench-pytorch.sh [--threads N] [--seconds S]
#
# Installs what is missing (Debian's python3-torch and libopenblas0-openmp),
# then runs build/bench_pytorch.py with Debian's /usr/bin/python3, with the
# OpenBLAS libblas.so.3 put first on LD_LIBRARY_PATH (plain python3-torch
# otherwise uses Debian's slow reference BLAS). Arguments are forwarded.
# Human-readable output goes to stderr; the last stdout line is one JSON object.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Install only the packages that are not already installed.
missing=()
for pkg in python3-torch libopenblas0-openmp; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# Run apt-get, waiting (up to ~15 min) while another apt/dpkg process holds its locks.
apt_get() {
    local err; err="$(mktemp)"
    for _ in $(seq 90); do
        if $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >&2 2>"$err"; then
            rm -f "$err"; return 0
        fi
        cat "$err" >&2
        grep -q "Could not get lock\|Unable to lock" "$err" || { rm -f "$err"; return 1; }
        echo "apt is busy, retrying in 10 s..." >&2
        sleep 10
    done
    rm -f "$err"; return 1
}
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing: ${missing[*]}" >&2
    apt_get update
    apt_get install -y --no-install-recommends "${missing[@]}"
fi

# Folder holding OpenBLAS's libblas.so.3 (e.g. /usr/lib/x86_64-linux-gnu/openblas-openmp).
blaslib="$(dpkg -L libopenblas0-openmp | grep '/libblas\.so\.3$' | head -n 1)"
if [ -z "$blaslib" ]; then
    echo "error: libblas.so.3 not found in libopenblas0-openmp" >&2
    exit 1
fi
blasdir="$(dirname "$blaslib")"

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set, are passed through unchanged.
export LD_LIBRARY_PATH="$blasdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec /usr/bin/python3 "$here/bench_pytorch.py" "$@"
