"""Writes a copy of ONNX Runtime's Linux x64 library whose MLAS kernels stop at a narrower vector tier, for benchmarks.

ONNX Runtime picks its MLAS kernels (GEMM, convolution) from CPUID when the library loads; unlike .NET and PyTorch it
has no switch for running narrower ones. On an AVX-512 machine, our AVX2 and Vector128 tiers would otherwise be
compared with its AVX-512 kernels. This copy changes one branch of MLAS's platform set-up, so that it runs the kernels
an AVX2-only CPU (tier avx2) or a CPU without AVX (tier vector128: SSE) would run:

- avx2: the jump that skips the AVX-512 kernels when CPUID lacks AVX512F is always taken;
- vector128: the jump into the AVX set-up when CPUID has AVX and OSXSAVE is never taken (the SSE defaults stay).

Each branch is found by its surrounding instructions and must occur exactly once, so a library built differently is
refused instead of patched somewhere else. Checked for Microsoft.ML.OnnxRuntime 1.32.0 (linux-x64).

Usage: python3 build/ort_tier.py SOURCE.so DESTINATION.so avx2|vector128
"""
import os
import sys

# (bytes before the branch, the branch, bytes after it, the branch's replacement)
PATCHES = {
    # test $0x10000,%r10d (CPUID.7:EBX.AVX512F); je +0x0e; mov %r8,%rax; not %rax; test $0xe0,%al (XCR0's AVX-512 state)
    "avx2": ("41f7c200000100", "740e", "4c89c048f7d0a8e0", "eb0e"),
    # cpuid; mov %ecx,%eax; not %eax; test $0x18000000,%eax (CPUID.1:ECX.AVX and OSXSAVE); je +0x25
    "vector128": ("0fa289c8f7d0a900000018", "7425", "", "9090"),
}


def main(source, destination, tier):
    if tier not in PATCHES:
        sys.exit(f"ort_tier.py: unknown tier '{tier}' (use avx2 or vector128)")
    before, branch, after, replacement = (bytes.fromhex(h) for h in PATCHES[tier])
    data = bytearray(open(source, "rb").read())
    pattern = before + branch + after
    hits = []
    at = data.find(pattern)
    while at != -1:
        hits.append(at)
        at = data.find(pattern, at + 1)
    if len(hits) != 1:
        sys.exit(f"ort_tier.py: {source}: expected MLAS's {tier} branch exactly once, found it {len(hits)} times "
                 "(not the ONNX Runtime build this script knows: Microsoft.ML.OnnxRuntime 1.32.0, linux-x64)")
    start = hits[0] + len(before)
    data[start:start + len(branch)] = replacement
    temporary = destination + ".tmp"
    with open(temporary, "wb") as f:
        f.write(data)
    os.chmod(temporary, os.stat(source).st_mode)
    os.replace(temporary, destination)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
