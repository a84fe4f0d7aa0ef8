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
