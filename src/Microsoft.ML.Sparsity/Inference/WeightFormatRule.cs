using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Puts every dense and convolution layer's weight of a trained network into its prediction format: the one asked
/// for, or the one <see cref="WeightFormat.Auto"/> picks by the rule below (docs/inference.md has the measurements).
/// </summary>
/// <remarks>
/// The rule, from the benchmark harness's kernel table on LeNet-300-100's shapes (AVX-512, 2 cores):
/// <list type="bullet">
/// <item>N:M sparse weights (every group of M = 4 or 8 consecutive inputs holds at most N ≤ M/2 non-zeros, and the
/// density is at least <see cref="NMFill"/> · N/M): N:M compressed for single examples; for batches too when N/M ≤ ¼
/// (<see cref="NMBatchedMaxRatio"/>), the dense weight otherwise (the tile kernel lost to the packed GEMM at 2:4 from
/// batch 16 on).</item>
/// <item>Other weights, one example at a time: sliced ELLPACK up to <see cref="SingleExampleSparseDensity"/>
/// density (single-threaded, it beat the two-thread dense GEMV at every sparsity measured: 1.46× at 50%, 3.31× at
/// 80%, 5.24× at 90% on LeNet; the crossing, extrapolated from the stored values, is near 40% sparsity), dense above.</item>
/// <item>Other weights, batches: CSR up to <see cref="BatchedSparseDensity"/> density (CSR matched the packed GEMM
/// at about 80% sparsity and beat it beyond; the GEMM reuses each loaded weight across a register tile, CSR cannot),
/// dense above.</item>
/// </list>
/// Without AVX-512 the sliced-ELLPACK and N:M kernels fall back to scalar loops (4–50× slower than the AVX2 dense
/// GEMV, measured with AVX-512 switched off), so every weight, N:M or not, is served by density alone: single examples
/// from CSR (AVX2 gathers) up to <see cref="ScalarSingleExampleCsrDensity"/>, batches from CSR up to
/// <see cref="BatchedSparseDensity"/>, dense otherwise.
/// </remarks>
internal static class WeightFormatRule
{
    /// <summary>Up to this density, <see cref="WeightFormat.Auto"/> serves single examples from sliced ELLPACK.</summary>
    public const double SingleExampleSparseDensity = 0.5;

    /// <summary>Without AVX-512, up to this density <see cref="WeightFormat.Auto"/> serves single examples from CSR (it beat the AVX2 dense GEMV from 90% sparsity on).</summary>
    public const double ScalarSingleExampleCsrDensity = 0.1;

    /// <summary>Up to this density, <see cref="WeightFormat.Auto"/> serves batches from CSR.</summary>
    public const double BatchedSparseDensity = 0.25;

    /// <summary>
    /// <see cref="WeightFormat.Auto"/> takes a weight as N:M only when its density is at least this fraction of N/M,
    /// as an N:M-pruned weight's is (a few kept weights may be exactly zero).
    /// </summary>
    public const double NMFill = 0.8;

    /// <summary>
    /// <see cref="WeightFormat.Auto"/> serves batches from N:M storage only up to N/M = 1/this (1:4, 1:8); denser
    /// patterns (2:4) serve batches from the dense weight, which the packed GEMM multiplies faster.
    /// </summary>
    public const int NMBatchedMaxRatio = 4;

    /// <summary>The key of a request that applies to every layer not named otherwise.</summary>
    public const string AllLayers = "*";

    /// <summary>
    /// Builds each weighted layer's prediction weight: returns the formats chosen and, per layer index, the matrix
    /// (null for layers without a weight and for dense convolutions, which keep their own kernels). The network is not changed:
    /// <see cref="Attach"/> puts the matrices on a copy that only predicts, so training code never sees a stale snapshot.
    /// </summary>
    /// <param name="network">The trained network.</param>
    /// <param name="requested">Formats asked for, by layer name (<see cref="AllLayers"/> for the rest).</param>
    /// <param name="vectorKernels">Whether the AVX-512 sliced-ELLPACK and N:M kernels run here (tests pass both).</param>
    /// <exception cref="ArgumentException">A requested layer does not exist or has no weight, or a layer cannot take the format asked for.</exception>
    public static (IReadOnlyList<LayerWeightFormat> Formats, IWeightMatrix?[] Matrices) Compile(SequentialNetwork network, IReadOnlyDictionary<string, WeightFormat> requested, bool? vectorKernels = null)
    {
        bool avx512 = vectorKernels ?? VectorIsas.Best >= VectorIsa.Avx2; // the sliced-ELLPACK and N:M kernels have AVX2 paths since issue 15
        var weighted = network.Layers.Where(l => l is DenseLayer or Conv2dLayer).ToDictionary(l => l.Name, StringComparer.Ordinal);
        foreach (string name in requested.Keys.Where(k => k != AllLayers && !weighted.ContainsKey(k)))
        {
            throw new ArgumentException(
                $"The model has no dense or convolution layer '{name}'; its weighted layers are {string.Join(", ", weighted.Keys)}.",
                nameof(requested));
        }

        var formats = new List<LayerWeightFormat>();
        var matrices = new IWeightMatrix?[network.Layers.Count];
        for (int i = 0; i < network.Layers.Count; i++)
        {
            Layer layer = network.Layers[i];
            if (layer is not (DenseLayer or Conv2dLayer))
                continue;
            WeightFormat format = requested.TryGetValue(layer.Name, out WeightFormat f) ? f
                : requested.GetValueOrDefault(AllLayers, WeightFormat.Auto);
            (Parameter weight, int rows, int cols) = layer switch
            {
                DenseLayer d => (d.Weight, d.Outputs, d.Inputs),
                Conv2dLayer c => (c.Weight, c.OutChannels, c.Weight.Length / c.OutChannels),
                _ => throw new InvalidOperationException(),
            };
            (matrices[i], LayerWeightFormat chosen) = Build(layer.Name, weight.Value, rows, cols, format, layer is Conv2dLayer, avx512);
            formats.Add(chosen);
        }

        return (formats, matrices);
    }

    /// <summary>
    /// Gives the layers of <paramref name="network"/> (a prediction copy) the matrices <see cref="Compile"/> built,
    /// shared, and marks its convolutions prediction-only (their weights never change, so they may cache derived data).
    /// </summary>
    public static void Attach(SequentialNetwork network, IWeightMatrix?[] matrices)
    {
        for (int i = 0; i < network.Layers.Count; i++)
        {
            switch (network.Layers[i])
            {
                case DenseLayer d: d.InferenceWeight = matrices[i]; break;
                case Conv2dLayer c:
                    c.InferenceWeight = matrices[i];
                    c.PredictionOnly = true;
                    break;
            }
        }
    }

    /// <param name="layer">The layer's name, for messages.</param>
    /// <param name="w">The weight [rows, cols].</param>
    /// <param name="rows">Outputs.</param>
    /// <param name="cols">Inputs per output.</param>
    /// <param name="format">The format asked for.</param>
    /// <param name="convolution">A convolution multiplies many rows (pixels) even for one example: it takes the batched format only.</param>
    /// <param name="avx512">Whether the sliced-ELLPACK and N:M vector kernels run here.</param>
    private static (IWeightMatrix? Matrix, LayerWeightFormat Chosen) Build(string layer, float[] w, int rows, int cols, WeightFormat format, bool convolution, bool avx512)
    {
        long nonZeros = w.Length - w.AsSpan().Count(0f);
        double density = w.Length == 0 ? 0 : (double)nonZeros / w.Length;
        (int n, int m) = FindNM(w, rows, cols, halfOrLess: format != WeightFormat.NM);
        if (format == WeightFormat.Auto && m > 0 && density < NMFill * n / m)
            (n, m) = (0, 0); // far sparser than its N:M bound (e.g. 97% unstructured fits 2:8): N:M would store mostly padding
        string pattern = m > 0 ? $"{n}:{m}" : nonZeros == w.Length ? "dense" : "unstructured";
        (WeightFormat single, WeightFormat batched) = format switch
        {
            WeightFormat.Auto when !avx512 => (density <= ScalarSingleExampleCsrDensity ? WeightFormat.Csr : WeightFormat.Dense,
                                               density <= BatchedSparseDensity ? WeightFormat.Csr : WeightFormat.Dense),
            WeightFormat.Auto when m > 0 => (WeightFormat.NM, NMBatchedMaxRatio * n <= m ? WeightFormat.NM : WeightFormat.Dense),
            WeightFormat.Auto => (density <= SingleExampleSparseDensity ? WeightFormat.SlicedEll : WeightFormat.Dense,
                                  density <= BatchedSparseDensity ? WeightFormat.Csr : WeightFormat.Dense),
            WeightFormat.NM when m == 0 => throw new ArgumentException(NotNMReason(layer, w, rows, cols), nameof(format)),
            WeightFormat.Dense or WeightFormat.Csr or WeightFormat.SlicedEll or WeightFormat.NM => (format, format),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, $"Layer '{layer}': unknown weight format."),
        };
        if (convolution)
            single = batched;

        // A dense convolution keeps its own path (the direct kernel or im2col + GEMM on the layer's weight): null.
        if (convolution && single == WeightFormat.Dense)
            return (null, new LayerWeightFormat(layer, single, batched, density, pattern, (long)rows * cols * sizeof(float)));
        IWeightMatrix first = Create(single, w, rows, cols, n, m);
        IWeightMatrix matrix = single == batched ? first : new BatchSizeDispatch(first, Create(batched, w, rows, cols, n, m));
        return (matrix, new LayerWeightFormat(layer, single, batched, density, pattern, matrix.StorageBytes));
    }

    private static IWeightMatrix Create(WeightFormat format, float[] w, int rows, int cols, int n, int m) => format switch
    {
        WeightFormat.Csr => CsrMatrix.FromDense(w, rows, cols),
        WeightFormat.SlicedEll => SlicedEllMatrix.FromDense(w, rows, cols),
        WeightFormat.NM => NMMatrix.FromDense(w, rows, cols, n, m),
        _ => new DenseMatrix(w, rows, cols),
    };

    /// <summary>
    /// The N:M structure of the weight: for M = 4 and 8 (dividing the input count), N is the most non-zeros any
    /// group holds; the M with the lower N/M wins (M = 4 on a tie). (0, 0) when neither M gives N &lt; M, or N/M
    /// over ½ when <paramref name="halfOrLess"/> — or when the weight is all zeros.
    /// </summary>
    private static (int N, int M) FindNM(float[] w, int rows, int cols, bool halfOrLess)
    {
        (int N, int M) best = (0, 0);
        foreach (int m in new[] { 4, 8 })
        {
            if (cols % m != 0 || cols == 0)
                continue;
            int n = 0;
            for (int start = 0; start < w.Length && n < m; start += m)
                n = Math.Max(n, m - w.AsSpan(start, m).Count(0f));
            bool fits = n > 0 && n < m && (!halfOrLess || 2 * n <= m);
            if (fits && (best.M == 0 || (double)n / m < (double)best.N / best.M))
                best = (n, m);
        }

        return best;
    }

    private static string NotNMReason(string layer, float[] w, int rows, int cols) =>
        cols % 4 != 0
            ? $"Layer '{layer}' cannot take the N:M format: its {cols} inputs per output are not a multiple of 4 or 8."
            : $"Layer '{layer}' cannot take the N:M format: its weight [{rows}, {cols}] is not N:M sparse for M = 4 or 8 " +
              "(some group of consecutive inputs is full). Prune it with an N:M pattern first.";
}
