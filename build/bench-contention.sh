#!/usr/bin/env bash
# LeNet-300-100 training (batch 64) alone and beside one and two CPU-bound processes: ours with 2 threads and 1
# thread, and PyTorch with 2 threads, in one run (see test/Microsoft.ML.Sparsity.PerformanceTests/ContentionBench.cs).
#
# Usage: build/bench-contention.sh [--seconds S] [--rounds N]
#
# PyTorch runs as build/bench-pytorch.sh runs it: Debian's /usr/bin/python3 with OpenBLAS's libblas.so.3 first on
# LD_LIBRARY_PATH (installed by build/bench-pytorch.sh). Without python3-torch the table has our rows only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

torch=()
blaslib="$(dpkg -L libopenblas0-openmp 2>/dev/null | grep '/libblas\.so\.3$' | head -n 1 || true)"
if [ -n "$blaslib" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
    export LD_LIBRARY_PATH="$(dirname "$blaslib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    torch=(--pytorch-bench "$here/bench_pytorch.py")
else
    echo "python3-torch or libopenblas0-openmp missing (build/bench-pytorch.sh installs them): our rows only" >&2
fi

exec dotnet run -c Release --project "$repo/test/Microsoft.ML.Sparsity.PerformanceTests" -- --only contention --seconds 2 "${torch[@]}" "$@"
