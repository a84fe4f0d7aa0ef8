using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// The two operations the sparse formats' Vector128 kernels are built from, on every target framework: a
/// multiply-add that is fused only where the CPU fuses it, and a per-lane pick of one of four values.
/// </summary>
internal static class SparseVector128
{
    /// <summary>a · b + c: fused on NEON and x86 with FMA, a multiply and an add otherwise (never a software fused multiply-add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
#if NET9_0_OR_GREATER
        Vector128.MultiplyAddEstimate(a, b, c);
#else
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c)
        : System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? System.Runtime.Intrinsics.Arm.AdvSimd.FusedMultiplyAdd(c, a, b)
        : a * b + c;
#endif

    /// <summary>
    /// x[index] per lane, for indices 0..3 (callers mask them): one vpermilps on x86 with AVX, TBL on ARM64
    /// (ShuffleNative; the portable Shuffle adds a range check the indices never need).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Pick(Vector128<float> x, Vector128<int> index) =>
#if NET10_0_OR_GREATER
        Vector128.ShuffleNative(x, index);
#else
        Avx.IsSupported ? Avx.PermuteVar(x, index) : Vector128.Shuffle(x, index);
#endif
}
