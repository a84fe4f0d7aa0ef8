#!/usr/bin/env bash
# The ARM64 kernel check: publishes test/Microsoft.ML.Sparsity.KernelCheck self-contained for linux-arm64 and runs it
# under Debian's qemu-user-static, so every kernel's NEON (Vector128) path is compared with a double-precision reference
# on an x86 machine. Correctness only: timings under emulation mean nothing. Installs what it needs (qemu-user-static,
# and the arm64 C runtime through Debian multiarch). Ends with the check's "PASSED"/"FAILED" line; exit status 1 on a
# mismatch. On an ARM64 machine it runs the check natively instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if [ "$(uname -m)" = "aarch64" ]; then
  dotnet run -c Release --project test/Microsoft.ML.Sparsity.KernelCheck
  exit
fi

sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
apt() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >&2; }
if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /lib/ld-linux-aarch64.so.1 ]; then
  echo "Installing qemu-user-static and the arm64 C runtime ..." >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
  apt update -qq
  apt install -y -qq --no-install-recommends qemu-user-static libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64
fi

echo "Publishing the kernel check for linux-arm64 ..." >&2
dotnet publish test/Microsoft.ML.Sparsity.KernelCheck -c Release -r linux-arm64 --self-contained -o "$out" -v quiet -nologo >&2
echo "Running it under qemu-aarch64-static ..." >&2
# W^X off: the runtime writes JIT code through a second, writable mapping, which qemu-user does not see as a change to
# the code it has already translated, so it would run stale code (seen: heap corruption, wrong results).
DOTNET_EnableWriteXorExecute=0 qemu-aarch64-static -L / "$out/Microsoft.ML.Sparsity.KernelCheck"
