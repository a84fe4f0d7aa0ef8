using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// <see cref="WeightFormat.FixedRule"/> for one vector tier (and the choice when a calibration cannot measure): a
/// layer's formats from its density and N:M pattern alone, with thresholds the benchmark harness measured on LeNet-300-100's
/// shapes (docs/inference.md, "Which format a layer gets").
/// </summary>
/// <param name="SlicedEllSingleDensity">Up to this density single examples take sliced ELLPACK (0: never).</param>
/// <param name="CsrSingleDensity">Else, up to this density single examples take CSR (0: never); dense above.</param>
/// <param name="CsrBatchedDensity">Up to this density batches take CSR; dense above.</param>
/// <param name="NMSingle">Whether N:M weights serve single examples from N:M storage (else they go by density like any other).</param>
/// <param name="NMBatchedMaxRatio">With <paramref name="NMSingle"/>, batches take N:M storage up to N/M = 1/this (1:4, 1:8), the dense weight otherwise.</param>
internal sealed record FixedFormatRule(double SlicedEllSingleDensity, double CsrSingleDensity, double CsrBatchedDensity, bool NMSingle, int NMBatchedMaxRatio)
{
    /// <summary>
    /// AVX-512 (Zen 5, 2 cores): single-threaded sliced ELLPACK beat the two-thread dense GEMV from 50% sparsity on
    /// (1.46× at 50%, 5.24× at 90% on LeNet); CSR matched the packed GEMM at about 75% sparsity for batches; N:M served
    /// single examples faster than dense at 2:4 and batches only from 1:4 on.
    /// </summary>
    public static FixedFormatRule Avx512 { get; } = new(0.5, 0, 0.25, NMSingle: true, NMBatchedMaxRatio: 4);

    /// <summary>
    /// AVX2 (measured with AVX-512 switched off): the 8-row sliced-ELLPACK kernel (vpermps per slot) beat the AVX2 dense
    /// GEMV from about 50% sparsity on (provisional: re-measured in docs/cpus.md), N:M as on AVX-512.
    /// </summary>
    public static FixedFormatRule Avx2 { get; } = new(0.5, 0, 0.25, NMSingle: true, NMBatchedMaxRatio: 4);

    /// <summary>128-bit vectors (SSE, NEON): the 4-row sliced-ELLPACK and N:M kernels (provisional: re-measured in docs/cpus.md).</summary>
    public static FixedFormatRule Vector128 { get; } = Avx2;

    /// <summary>
    /// No vector unit the runtime accelerates: every format runs plain loops, and CSR (the fewest stored values) or
    /// dense serve by density, as the AVX2 rule did when its sparse kernels were scalar.
    /// </summary>
    public static FixedFormatRule Scalar { get; } = new(0, 0.1, 0.25, NMSingle: false, NMBatchedMaxRatio: 0);

    /// <summary>The rule for <paramref name="isa"/>.</summary>
    public static FixedFormatRule For(VectorIsa isa) => isa switch
    {
        VectorIsa.Avx512 => Avx512,
        VectorIsa.Avx2 => Avx2,
        VectorIsa.Vector128 => Vector128,
        _ => Scalar,
    };

    /// <summary>The formats for a weight of this density and N:M pattern (<paramref name="m"/> = 0: not N:M).</summary>
    public (WeightFormat Single, WeightFormat Batched) Choose(double density, int n, int m)
    {
        if (m > 0 && NMSingle)
            return (WeightFormat.NM, NMBatchedMaxRatio * n <= m ? WeightFormat.NM : WeightFormat.Dense);
        WeightFormat single = SlicedEllSingleDensity > 0 && density <= SlicedEllSingleDensity ? WeightFormat.SlicedEll
            : CsrSingleDensity > 0 && density <= CsrSingleDensity ? WeightFormat.Csr
            : WeightFormat.Dense;
        return (single, density <= CsrBatchedDensity ? WeightFormat.Csr : WeightFormat.Dense);
    }
}
