using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// The vector instruction set a kernel is written for, from the narrowest to the widest. Every kernel family has a path
/// for each tier, so a CPU never runs a scalar loop where a vector one exists: <see cref="Vector128"/> is SSE4 on x86
/// and NEON (AdvSimd) on ARM64, written against the cross-platform <c>Vector128</c> API.
/// </summary>
/// <remarks>
/// Kernels that take the tier as a parameter let the tests run every tier this machine supports in one process. The
/// runtime's switches narrow <see cref="VectorIsas.Best"/> for a whole process: <c>DOTNET_EnableAVX512=0</c> gives
/// <see cref="Avx2"/>, <c>DOTNET_EnableAVX2=0</c> gives <see cref="Vector128"/> (it also switches FMA off).
/// </remarks>
internal enum VectorIsa
{
    /// <summary>No vector unit the runtime accelerates: plain loops.</summary>
    Scalar = 0,

    /// <summary>128-bit vectors: SSE4 on x86 (multiply and add, no FMA), NEON on ARM64 (fused multiply-add).</summary>
    Vector128 = 1,

    /// <summary>256-bit AVX2 with FMA (x86-64-v3: most laptops and desktops, AMD Zen 2/3 servers).</summary>
    Avx2 = 2,

    /// <summary>512-bit AVX-512 (F, DQ, BW, VL): AMD Zen 4/5, Intel server parts.</summary>
    Avx512 = 3,
}

/// <summary>The tiers this process can run.</summary>
internal static class VectorIsas
{
    /// <summary>The widest tier this process's CPU and runtime switches allow.</summary>
    public static VectorIsa Best { get; } =
        Avx512F.IsSupported && Avx512DQ.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported ? VectorIsa.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? VectorIsa.Avx2
        : Vector128.IsHardwareAccelerated ? VectorIsa.Vector128
        : VectorIsa.Scalar;

    /// <summary>Every tier up to <see cref="Best"/>, narrowest first (the tests run each).</summary>
    public static IReadOnlyList<VectorIsa> Available { get; } =
        [.. Enum.GetValues<VectorIsa>().Where(isa => isa <= Best)];

    /// <summary>Whether this process can run <paramref name="isa"/>.</summary>
    public static bool IsAvailable(VectorIsa isa) => isa <= Best;

    /// <summary>The tier's name as the harness and format reports print it (e.g. "AVX2", "Vector128 (NEON)").</summary>
    public static string Describe(VectorIsa isa) => isa switch
    {
        VectorIsa.Avx512 => "AVX-512",
        VectorIsa.Avx2 => "AVX2",
        VectorIsa.Vector128 => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? "Vector128 (NEON)" : "Vector128 (SSE)",
        _ => "scalar",
    };
}
