#!/usr/bin/env bash
# Runs the whole test suite (installing what it needs first) and ends with one line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
build/setup.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# The whole solution first: some tests run its other programs (test/PortableModelConsumer) as child processes.
echo "Building Sparsity.sln ..." >&2
dotnet build Sparsity.sln -c Release -v quiet -nologo >&2
dotnet test Sparsity.sln -c Release --no-build "$@" 2>&1 | tee "$log" || status=$?
# dotnet test prints "Failed: F, Passed: P, Skipped: S, Total: T" per test assembly; add them up.
summary=$(grep -oE 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" |
  awk -F'[:,]' '{f+=$2; p+=$4; s+=$6} END {printf "%d passed, %d failed, %d skipped", p, f, s}')
echo "${summary:-0 passed, 0 failed, 0 skipped}"
exit $status
