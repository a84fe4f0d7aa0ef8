#!/usr/bin/env bash
# Measures our engine and PyTorch (Debian's python3-torch on OpenBLAS) side by side in one run and prints
# Markdown tables with ratios. Usage: build/benchmark.sh [--threads 2] [--seconds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; seconds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "unknown argument $1 (use --threads N --seconds S)" >&2; exit 2 ;;
  esac
done
build/setup.sh
torch_json="$(mktemp)"
trap 'rm -f "$torch_json"' EXIT
echo "Measuring PyTorch ($threads threads)..." >&2
bash build/bench-pytorch.sh --threads "$threads" --seconds "$seconds" | tail -n 1 > "$torch_json"
echo "Measuring Microsoft.ML.Sparsity ($threads threads)..." >&2
dotnet run -c Release --project test/Microsoft.ML.Sparsity.PerformanceTests -- --threads "$threads" --seconds "$seconds" --pytorch-json "$torch_json"
