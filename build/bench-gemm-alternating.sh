#!/usr/bin/env bash
# Our GEMM against PyTorch's (Debian's python3-torch on OpenBLAS) on the shapes both measure, in alternating rounds:
# each round measures PyTorch, then ours, each in a fresh process, and the table gives each shape's median of the
# rounds' ratios. The machines' speed drifts from minute to minute (docs/cpus.md), so a ratio of two measurements
# taken minutes apart, as build/benchmark.sh's GEMM table is, also measures the drift.
# Usage: build/bench-gemm-alternating.sh [--tier native|avx2|vector128] [--rounds 7] [--threads 2] [--seconds 1]
# (tiers as in build/benchmark.sh: PyTorch restricted to the same instructions as ours).
set -euo pipefail
cd "$(dirname "$0")/.."
source build/tier-env.sh
tier=avx2; rounds=7; threads=2; seconds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tier) tier="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "unknown argument $1 (use --tier native|avx2|vector128 --rounds N --threads N --seconds S)" >&2; exit 2 ;;
  esac
done
tier_env "$tier"
build/setup.sh
dotnet build test/Microsoft.ML.Sparsity.PerformanceTests -c Release -v quiet -nologo >&2
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
  echo "Round $round of $rounds ($tier)..." >&2
  env "${theirs[@]}" bash build/bench-pytorch.sh --threads "$threads" --seconds "$seconds" --gemm-only 2>/dev/null | tail -n 1 |
    python3 -c 'import json, sys; print("torch", *(f"{k}={v}" for k, v in json.load(sys.stdin)["gemm"].items()))' >> "$results"
  env "${ours[@]}" dotnet run -c Release --no-build --project test/Microsoft.ML.Sparsity.PerformanceTests -- \
    --threads "$threads" --seconds "$seconds" --only gemm-shapes | grep '^ours ' >> "$results"
done
python3 - "$results" "$tier" "$threads" <<'EOF'
import statistics, sys
rows = {"torch": [], "ours": []}
for line in open(sys.argv[1]):
    who, *cells = line.split()
    rows[who].append({k: float(v) for k, v in (c.split("=") for c in cells)})
print(f"\n### GEMM against PyTorch/OpenBLAS, {sys.argv[2]}, {sys.argv[3]} threads, {len(rows['ours'])} alternating rounds (GFLOPS, medians)\n")
print("| shape m×k×n | PyTorch | ours | ours/PyTorch (median of the rounds' ratios) | each round |\n|---|---|---|---|---|")
for shape in rows["ours"][0]:
    theirs = [r[shape] for r in rows["torch"]]
    ours = [r[shape] for r in rows["ours"]]
    ratios = [o / t for o, t in zip(ours, theirs)]
    print(f"| {shape} | {statistics.median(theirs):.1f} | {statistics.median(ours):.1f} | {statistics.median(ratios):.3f}× | "
          + ", ".join(f"{x:.2f}" for x in ratios) + " |")
EOF
