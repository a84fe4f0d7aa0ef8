#!/usr/bin/env bash
# Runs the whole test suite (installing what it needs first) once per vector tier this CPU has: as it is, with AVX-512
# switched off (the AVX2 kernels: most laptops and cloud VMs) and with AVX2 switched off (the Vector128 kernels, as on
# ARM64). Ends with one line "N passed, N failed, N skipped" summed over the runs. Extra arguments go to dotnet test
# (e.g. --filter); without any, build/arm64-check.sh then checks the ARM64 (NEON) kernels under emulation and
# build/cluster-test.sh runs a sweep on a Redis-clustered cluster of real processes, each result counting as one test.
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# The whole solution first: some tests run its other programs (test/PortableModelConsumer) as child processes.
echo "Building Sparsity.sln ..." >&2
dotnet build Sparsity.sln -c Release -v quiet -nologo >&2
tiers=("native:" "AVX-512 off:DOTNET_EnableAVX512=0" "AVX2 off:DOTNET_EnableAVX2=0")
# Tests that drive other processes (the command-line tool, the projects it writes, Chromium) carry the trait
# Tier=NativeOnly: the kernels they reach are the ones the in-process tests check at every tier, so they run once.
for tier in "${tiers[@]}"; do
  name="${tier%%:*}"; switch="${tier#*:}"
  echo "=== Test suite, $name ${switch:+($switch)} ===" >&2
  filter=()
  [ -n "$switch" ] && [ $# -eq 0 ] && filter=(--filter "Tier!=NativeOnly")
  env $switch dotnet test Sparsity.sln -c Release --no-build "${filter[@]}" "$@" 2>&1 | tee -a "$log" || status=$?
done
if [ $# -eq 0 ]; then
  echo "=== ARM64 kernel check (qemu-user-static) ===" >&2
  arm64=0; build/arm64-check.sh 2>&1 | tee -a "$log" || arm64=$?
  if [ "$arm64" -eq 0 ]; then
    echo "Failed: 0, Passed: 1, Skipped: 0 (ARM64 kernel check)" >> "$log"
  else
    echo "Failed: 1, Passed: 0, Skipped: 0 (ARM64 kernel check)" >> "$log"; status=1
  fi
  echo "=== Cluster script test (redis-server, two workers, a coordinator; kill -9) ===" >&2
  cluster=0; build/cluster-test.sh 2>&1 | tail -n 40 | tee -a "$log" || cluster=$?
  if [ "$cluster" -eq 0 ]; then
    echo "Failed: 0, Passed: 1, Skipped: 0 (cluster script test)" >> "$log"
  else
    echo "Failed: 1, Passed: 0, Skipped: 0 (cluster script test)" >> "$log"; status=1
  fi
fi
# dotnet test prints "Failed: F, Passed: P, Skipped: S, Total: T" per test assembly and run; add them up.
summary=$(grep -oE 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" |
  awk -F'[:,]' '{f+=$2; p+=$4; s+=$6} END {printf "%d passed, %d failed, %d skipped", p, f, s}')
echo "${summary:-0 passed, 0 failed, 0 skipped}"
exit $status
