#!/usr/bin/env bash
# Measures our engine and PyTorch (Debian's python3-torch on OpenBLAS) side by side and prints Markdown tables with
# ratios, once per vector tier: as the CPU is (native), with AVX-512 switched off (avx2: the kernels most laptops and
# cloud VMs run) and with AVX2 switched off (vector128: the kernels ARM64 runs, here on SSE). Each tier measures PyTorch
# restricted to the same instructions (OpenBLAS core Haswell / Nehalem, ATen's avx2 / default kernels), then ours.
# ONNX Runtime has no such switch; the avx2 and vector128 tiers run a copy of the harness whose ONNX Runtime library
# stops at the tier's MLAS kernels (build/ort_tier.py).
# Usage: build/benchmark.sh [--threads 2] [--seconds 3] [--tiers native,avx2,vector128] [--only PART[,PART...]]
# (parts: the harness's --only modes, e.g. gemm,sparse,cnn,calibration; PyTorch is measured once per tier for all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
source build/tier-env.sh
threads=2; seconds=3; tiers="native,avx2,vector128"; parts="all"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --tiers) tiers="$2"; shift 2 ;;
    --only) parts="$2"; shift 2 ;;
    *) echo "unknown argument $1 (use --threads N --seconds S --tiers native,avx2,vector128 --only PART[,PART...])" >&2; exit 2 ;;
  esac
done
build/setup.sh
torch_json="$(mktemp)"
harness_copies="$(mktemp -d)"
trap 'rm -rf "$torch_json" "$harness_copies"' EXIT
dotnet build test/Microsoft.ML.Sparsity.PerformanceTests -c Release -v quiet -nologo >&2
IFS=',' read -r -a tier_list <<< "$tiers"
for tier in "${tier_list[@]}"; do
  tier_env "$tier"
  harness_for "$tier"
  echo -e "\n## Tier: $tier ${ours[*]:+(${ours[*]}; PyTorch: ${theirs[*]}; ONNX Runtime: the MLAS $tier kernels)}\n"
  echo "Measuring PyTorch ($threads threads, $tier)..." >&2
  env "${theirs[@]}" bash build/bench-pytorch.sh --threads "$threads" --seconds "$seconds" | tail -n 1 > "$torch_json"
  echo "Measuring Microsoft.ML.Sparsity ($threads threads, $tier)..." >&2
  IFS=',' read -r -a part_list <<< "$parts"
  for part in "${part_list[@]}"; do
    only=(); [ "$part" = all ] || only=(--only "$part")
    env "${ours[@]}" dotnet "$harness" \
      --threads "$threads" --seconds "$seconds" --pytorch-json "$torch_json" "${only[@]}"
  done
done
