# Sourced by the benchmark scripts. tier_env TIER sets the arrays ours and theirs: the environment our engine and
# PyTorch run one vector tier with, PyTorch restricted to the same instructions (OpenBLAS core, ATen kernels).
# native: the CPU as it is; avx2: AVX-512 switched off (the kernels most laptops and cloud VMs run); vector128: AVX2
# switched off (the kernels ARM64 runs, here on SSE).
tier_env() {
  case "$1" in
    native) ours=(); theirs=() ;;
    avx2) ours=(DOTNET_EnableAVX512=0); theirs=(OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2) ;;
    vector128) ours=(DOTNET_EnableAVX2=0); theirs=(OPENBLAS_CORETYPE=Nehalem ATEN_CPU_CAPABILITY=default) ;;
    *) echo "unknown tier $1 (use native, avx2, vector128)" >&2; exit 2 ;;
  esac
}

# harness_for TIER: sets harness to the built benchmark harness (the .dll) to run TIER with. For avx2 and vector128 it is
# a copy in $harness_copies (which the caller creates and removes) whose ONNX Runtime runs the same tier's MLAS float
# kernels (build/ort_tier.py): ONNX Runtime has no switch of its own and would otherwise run AVX-512 in every tier.
# Exports SPARSITY_BENCH_ORT_KERNELS, which the harness prints in its first line.
harness_for() {
  local built=test/Microsoft.ML.Sparsity.PerformanceTests/bin/Release/net10.0
  harness="$built/Microsoft.ML.Sparsity.PerformanceTests.dll"
  export SPARSITY_BENCH_ORT_KERNELS="MLAS $1 (build/ort_tier.py)"
  if [ "$1" = native ]; then
    SPARSITY_BENCH_ORT_KERNELS="MLAS as CPUID allows"
    return
  fi
  : "${harness_copies:?harness_for needs harness_copies, a folder for the harness copies}"
  if [ "$(uname -m)" != x86_64 ]; then
    echo "the $1 tier's ONNX Runtime copy is made for linux-x64 only (this machine: $(uname -m))" >&2
    exit 2
  fi
  local copy="$harness_copies/$1" ort=runtimes/linux-x64/native/libonnxruntime.so
  if [ ! -d "$copy" ]; then
    cp -r "$built" "$copy"
    python3 build/ort_tier.py "$built/$ort" "$copy/$ort" "$1"
  fi
  harness="$copy/Microsoft.ML.Sparsity.PerformanceTests.dll"
}
