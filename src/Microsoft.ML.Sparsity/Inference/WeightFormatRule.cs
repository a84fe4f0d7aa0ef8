using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Puts every dense and convolution layer's weight of a trained network into its prediction formats: the one asked
/// for, the ones <see cref="WeightFormat.Auto"/> measures fastest here (<see cref="FormatCalibration"/>), or the ones
/// <see cref="WeightFormat.FixedRule"/> gives for this CPU's vector tier (<see cref="FixedFormatRule"/>; docs/inference.md).
/// </summary>
/// <remarks>
/// N:M storage is a candidate only for weights whose density is at least <see cref="NMFill"/> · N/M, as an N:M-pruned
/// weight's is: a weight far sparser than its N:M bound (97% unstructured fits 2:8) would store mostly padding.
/// Each layer's report names the vector tier its kernels run at and notes a scalar fallback.
/// </remarks>
internal static class WeightFormatRule
{
    /// <summary>
    /// Automatic choices take a weight as N:M only when its density is at least this fraction of N/M
    /// (a few kept weights of an N:M-pruned layer may be exactly zero).
    /// </summary>
    public const double NMFill = 0.8;

    /// <summary>
    /// <see cref="WeightFormat.Auto"/> times sparse formats only up to this density: above it a sparse kernel does at
    /// least three quarters of the dense multiply-adds plus its index work per value (every measurement in
    /// docs/inference.md had dense faster from 50% density on), so the dense weight is the only candidate.
    /// </summary>
    public const double SparseCandidateDensity = 0.75;

    /// <summary>The key of a request that applies to every layer not named otherwise.</summary>
    public const string AllLayers = "*";

    /// <summary>
    /// Builds each weighted layer's prediction weight: returns the formats chosen and, per layer index, the matrix
    /// (null for layers without a weight and for dense convolutions, which keep their own kernels). The network is not changed:
    /// <see cref="Attach"/> puts the matrices on a copy that only predicts, so training code never sees a stale snapshot.
    /// </summary>
    /// <param name="network">The trained network.</param>
    /// <param name="requested">Formats asked for, by layer name (<see cref="AllLayers"/> for the rest).</param>
    /// <param name="fixedRuleIsa">The tier whose <see cref="FixedFormatRule"/> applies (tests pass each); <see cref="VectorIsas.Best"/> by default.</param>
    /// <param name="calibration">What times the candidates for <see cref="WeightFormat.Auto"/> (tests inject a timer); <see cref="FormatCalibration.Shared"/> by default.</param>
    /// <exception cref="ArgumentException">A requested layer does not exist or has no weight, or a layer cannot take the format asked for.</exception>
    public static (IReadOnlyList<LayerWeightFormat> Formats, IWeightMatrix?[] Matrices) Compile(SequentialNetwork network, IReadOnlyDictionary<string, WeightFormat> requested,
        VectorIsa? fixedRuleIsa = null, FormatCalibration? calibration = null)
    {
        var context = new Context(FixedFormatRule.For(fixedRuleIsa ?? VectorIsas.Best), calibration ?? FormatCalibration.Shared, network.Pool);
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
            // The run: the group axis N:M groups are cut along (a convolution's [out, kh, kw, C] row holds kh·kw runs of C).
            (Parameter weight, int rows, int cols, int run) = layer switch
            {
                DenseLayer d => (d.Weight, d.Outputs, d.Inputs, d.Inputs),
                Conv2dLayer c => (c.Weight, c.OutChannels, c.Weight.Length / c.OutChannels, c.Weight.Shape[3]),
                _ => throw new InvalidOperationException(),
            };
            bool direct = layer is Conv2dLayer conv && DirectConvolution.Supports(conv.Isa, cols, rows);
            (matrices[i], LayerWeightFormat chosen) = Build(layer.Name, weight.Value, rows, cols, run, format, layer is Conv2dLayer, direct, context);
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

    /// <summary>What the automatic choices of one compilation use.</summary>
    private sealed record Context(FixedFormatRule Rule, FormatCalibration Calibration, WorkerPool Pool);

    /// <param name="layer">The layer's name, for messages.</param>
    /// <param name="w">The weight [rows, cols].</param>
    /// <param name="rows">Outputs.</param>
    /// <param name="cols">Inputs per output.</param>
    /// <param name="run">The group axis's length (runs of it make a row; N:M groups start at each run's start).</param>
    /// <param name="format">The format asked for.</param>
    /// <param name="convolution">A convolution multiplies many rows (pixels) even for one example: it takes the batched format only.</param>
    /// <param name="directConvolution">
    /// A convolution whose dense form runs the direct kernel (any convolution on a vector tier): the calibration times the
    /// dense GEMM, not that kernel, so it would compare the sparse formats with the wrong dense time (measured: it served a
    /// 50% sparse CNN from CSR at 0.67× the dense speed); the fixed rule chooses instead.
    /// </param>
    /// <param name="context">The fixed rule and calibration for automatic choices.</param>
    private static (IWeightMatrix? Matrix, LayerWeightFormat Chosen) Build(string layer, float[] w, int rows, int cols, int run, WeightFormat format, bool convolution,
        bool directConvolution, Context context)
    {
        long nonZeros = w.Length - w.AsSpan().Count(0f);
        double density = w.Length == 0 ? 0 : (double)nonZeros / w.Length;
        (int n, int m) = FindNM(w, run, halfOrLess: format != WeightFormat.NM);
        if (format is WeightFormat.Auto or WeightFormat.FixedRule && m > 0 && density < NMFill * n / m)
            (n, m) = (0, 0); // far sparser than its N:M bound (e.g. 97% unstructured fits 2:8): N:M would store mostly padding
        string pattern = m > 0 ? $"{n}:{m}" : nonZeros == w.Length ? "dense" : "unstructured";

        // Each format built once, whether a calibration candidate or the chosen one.
        var built = new Dictionary<WeightFormat, IWeightMatrix>();
        IWeightMatrix Get(WeightFormat f) => built.TryGetValue(f, out IWeightMatrix? matrix) ? matrix : built[f] = Create(f, w, rows, cols, run, n, m);

        WeightFormat single, batched;
        FormatChoice chosenBy = FormatChoice.Requested;
        var notes = new List<string>();
        switch (format)
        {
            case WeightFormat.Auto when directConvolution && density <= SparseCandidateDensity:
                (single, batched) = context.Rule.Choose(density, n, m);
                chosenBy = FormatChoice.FixedRule;
                notes.Add("Its dense form runs the direct convolution kernel, which the calibration does not time: the fixed rule chose.");
                break;
            case WeightFormat.Auto:
                WeightFormat[] candidates = density > SparseCandidateDensity ? [WeightFormat.Dense]
                    : m > 0 ? [WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll, WeightFormat.NM]
                    : [WeightFormat.Dense, WeightFormat.Csr, WeightFormat.SlicedEll];
                FormatCalibration.Outcome outcome = context.Calibration.Choose(
                    FormatCalibration.Signature.Of(rows, cols, density, n, m, convolution), () => [.. candidates.Select(f => (f, Get(f)))], context.Pool);
                if (outcome.Failure is null)
                {
                    (single, batched, chosenBy) = (outcome.Single, outcome.Batched, FormatChoice.Calibrated);
                }
                else
                {
                    (single, batched) = context.Rule.Choose(density, n, m);
                    chosenBy = FormatChoice.FixedRule;
                    notes.Add($"The calibration could not measure ({outcome.Failure}): the fixed rule chose.");
                }

                break;
            case WeightFormat.FixedRule:
                (single, batched) = context.Rule.Choose(density, n, m);
                chosenBy = FormatChoice.FixedRule;
                break;
            case WeightFormat.NM when m == 0:
                throw new ArgumentException(
                    $"Layer '{layer}' cannot take the N:M format: its weight [{rows}, {cols}] is not N:M sparse for M = 4 or 8 " +
                    "(some group of consecutive inputs is full). Prune it with an N:M pattern first.", nameof(format));
            case WeightFormat.Dense or WeightFormat.Csr or WeightFormat.SlicedEll or WeightFormat.NM:
                (single, batched) = (format, format);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, $"Layer '{layer}': unknown weight format.");
        }

        if (convolution)
            single = batched;
        VectorIsa singleIsa = Get(single).KernelIsa, batchedIsa = Get(batched).KernelIsa;
        foreach ((WeightFormat f, VectorIsa isa) in new[] { (single, singleIsa), (batched, batchedIsa) }.Distinct())
        {
            if (isa == VectorIsa.Scalar && VectorIsas.Best > VectorIsa.Scalar)
                notes.Add($"{f} runs a scalar fallback on this CPU ({VectorIsas.Describe(VectorIsas.Best)}).");
        }

        // A dense convolution keeps its own path (the direct kernel or im2col + GEMM on the layer's weight): null.
        IWeightMatrix? prediction = convolution && single == WeightFormat.Dense ? null
            : single == batched ? Get(single)
            : new BatchSizeDispatch(Get(single), Get(batched));
        long bytes = prediction?.StorageBytes ?? (long)rows * cols * sizeof(float);
        return (prediction, new LayerWeightFormat(layer, single, batched, density, pattern, bytes)
        {
            ChosenBy = chosenBy,
            SingleExampleKernel = VectorIsas.Describe(singleIsa),
            BatchedKernel = VectorIsas.Describe(batchedIsa),
            Note = string.Join(" ", notes),
        });
    }

    private static IWeightMatrix Create(WeightFormat format, float[] w, int rows, int cols, int run, int n, int m) => format switch
    {
        WeightFormat.Csr => CsrMatrix.FromDense(w, rows, cols),
        WeightFormat.SlicedEll => SlicedEllMatrix.FromDense(w, rows, cols),
        WeightFormat.NM => NMMatrix.FromDense(w, rows, cols, n, m, run),
        _ => new DenseMatrix(w, rows, cols),
    };

    /// <summary>
    /// The N:M structure of the weight, whose rows are runs of <paramref name="run"/> inputs cut into groups of M from
    /// each run's start: for M = 4 and 8, the least N that every group allows, a full group holding at most N non-zeros
    /// and a ragged last group of r at most ⌈N·r/M⌉ (what N:M pruning keeps); the M with the lower N/M wins (M = 4 on a
    /// tie). An M longer than the run is not considered: every group would be ragged, and a run of one input fits
    /// every N (a one-channel convolution would look 1:8 at any density). (0, 0) when neither M gives N &lt; M, or N/M over
    /// ½ when <paramref name="halfOrLess"/> — or when the weight is all zeros.
    /// </summary>
    private static (int N, int M) FindNM(float[] w, int run, bool halfOrLess)
    {
        (int N, int M) best = (0, 0);
        if (w.Length == 0 || run == 0)
            return best;
        foreach (int m in new[] { 4, 8 })
        {
            if (run < m)
                continue;
            int n = 0;
            for (int start = 0; start < w.Length && n < m; start += run)
            {
                for (int g = 0; g < run; g += m)
                {
                    int size = Math.Min(m, run - g), nonZeros = size - w.AsSpan(start + g, size).Count(0f);
                    // The least N whose ⌈N·size/M⌉ reaches nonZeros (nonZeros itself for a full group).
                    n = Math.Max(n, nonZeros == 0 ? 0 : (nonZeros - 1) * m / size + 1);
                }
            }

            bool fits = n > 0 && n < m && (!halfOrLess || 2 * n <= m);
            if (fits && (best.M == 0 || (double)n / m < (double)best.N / best.M))
                best = (n, m);
        }

        return best;
    }
}
