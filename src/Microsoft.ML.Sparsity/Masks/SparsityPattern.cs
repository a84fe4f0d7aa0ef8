namespace Microsoft.ML.Sparsity.Masks;

/// <summary>
/// Which sets of weights are pruned together. A layer's weight is seen as a matrix [outputs, inputs × kernel
/// positions] whose rows run over input channels fastest (dense [out, in]; convolution [out, kh, kw, in]).
/// </summary>
/// <remarks>
/// Patterns: <see cref="Unstructured"/> (single weights), <see cref="NM"/> (N of every M consecutive inputs kept),
/// <see cref="Block"/> (r×c tiles of the matrix) and <see cref="OutputChannels"/> (whole neurons / filters).
/// A unit (block, channel) is scored by the mean of its weights' importance scores, except under the criteria that
/// score channels themselves (<see cref="ImportanceCriterion.BatchNormScale"/>, <see cref="ImportanceCriterion.ColumnSubsetSelection"/>).
/// </remarks>
public abstract class SparsityPattern
{
    private protected SparsityPattern() { }

    /// <summary>Single weights: any subset may be pruned.</summary>
    public static SparsityPattern Unstructured { get; } = new UnstructuredPattern();

    /// <summary>Whole output channels: a dense layer's neurons (weight rows) or a convolution's filters.</summary>
    public static SparsityPattern OutputChannels { get; } = new ChannelPattern();

    /// <summary>
    /// N:M fine-grained structured sparsity: in every group of <paramref name="m"/> consecutive inputs (for a
    /// convolution, consecutive input channels at one kernel position) exactly <paramref name="n"/> weights are kept.
    /// The sparsity is 1 − N/M whatever target is asked. When M does not divide the layer's input-channel count C, the
    /// last group of each run of C inputs is ragged: of its r = C mod M weights ⌈N·r/M⌉ are kept (as padding the run
    /// to a multiple of M with zeros would), so such a layer's sparsity is slightly under 1 − N/M.
    /// (Mishra et al., "Accelerating Sparse Deep Neural Networks", 2021; Zhou et al., "Learning N:M Fine-grained
    /// Structured Sparse Neural Networks From Scratch", 2021.)
    /// </summary>
    /// <param name="n">Weights kept per group, 0 &lt; n &lt; m.</param>
    /// <param name="m">The group size.</param>
    public static SparsityPattern NM(int n, int m)
    {
        if (m <= 1) throw new ArgumentOutOfRangeException(nameof(m), m, "The group size M must be at least 2.");
        if (n <= 0 || n >= m) throw new ArgumentOutOfRangeException(nameof(n), n, $"N must satisfy 0 < N < M = {m}.");
        return new NMPattern(n, m);
    }

    /// <summary>Tiles of <paramref name="rows"/> × <paramref name="columns"/> of the weight matrix; the matrix's sides must be multiples of them.</summary>
    public static SparsityPattern Block(int rows, int columns)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Block rows must be positive.");
        if (columns <= 0) throw new ArgumentOutOfRangeException(nameof(columns), columns, "Block columns must be positive.");
        return new BlockPattern(rows, columns);
    }

    /// <summary>
    /// The pattern a name stands for, as <see cref="object.ToString"/> writes it: "unstructured", "output channels",
    /// "N:M" (e.g. "2:4") or "block R×C" (also "block RxC").
    /// </summary>
    /// <exception cref="ArgumentException">The name is none of these; the message lists them.</exception>
    public static SparsityPattern Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string text = name.Trim();
        if (text.Equals(Unstructured.ToString(), StringComparison.OrdinalIgnoreCase)) return Unstructured;
        if (text.Equals(OutputChannels.ToString(), StringComparison.OrdinalIgnoreCase)) return OutputChannels;
        bool block = text.StartsWith("block ", StringComparison.OrdinalIgnoreCase);
        var parts = (block ? text[6..] : text).Split(block ? ['×', 'x'] : [':']);
        if (parts is [var a, var b] && int.TryParse(a, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int first)
            && int.TryParse(b, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int second))
        {
            try
            {
                return block ? Block(first, second) : NM(first, second);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new ArgumentException($"'{name}' is not a valid sparsity pattern: {e.Message.Split(" (Parameter", 2)[0]}", nameof(name), e);
            }
        }
        throw new ArgumentException($"'{name}' is not a sparsity pattern: use unstructured, output channels, N:M (e.g. 2:4) or block R×C (e.g. block 4x4).", nameof(name));
    }

    /// <summary>The sparsity the pattern itself fixes (N:M: 1 − N/M, exact when M divides the layer's input-channel count), or null when any target can be reached.</summary>
    internal virtual double? FixedSparsity => null;

    /// <summary>Null when the pattern fits the layer, else the constraint it breaks.</summary>
    internal abstract string? Misfit(PrunableLayer layer);

    internal abstract int UnitCount(PrunableLayer layer);

    /// <summary>Unit scores: the mean element score of each unit.</summary>
    internal abstract void ScoreUnits(PrunableLayer layer, ReadOnlySpan<float> elementScores, Span<float> unitScores);

    /// <summary>Writes the element mask: 0 for the elements of pruned units, 1 elsewhere.</summary>
    internal abstract void ExpandUnits(PrunableLayer layer, ReadOnlySpan<bool> prunedUnits, Span<float> mask);

    /// <summary>True when every element of a unit is masked (the unit is already pruned).</summary>
    internal void PrunedUnits(PrunableLayer layer, ReadOnlySpan<float> mask, Span<bool> pruned)
    {
        // A unit's mean mask is 0 exactly when all of its elements are pruned.
        var meanMask = new float[UnitCount(layer)];
        ScoreUnits(layer, mask, meanMask);
        for (int u = 0; u < meanMask.Length; u++) pruned[u] = meanMask[u] == 0;
    }

    private sealed class UnstructuredPattern : SparsityPattern
    {
        internal override string? Misfit(PrunableLayer layer) => null;
        internal override int UnitCount(PrunableLayer layer) => layer.Count;
        internal override void ScoreUnits(PrunableLayer layer, ReadOnlySpan<float> elementScores, Span<float> unitScores) => elementScores.CopyTo(unitScores);

        internal override void ExpandUnits(PrunableLayer layer, ReadOnlySpan<bool> prunedUnits, Span<float> mask)
        {
            for (int i = 0; i < mask.Length; i++) mask[i] = prunedUnits[i] ? 0f : 1f;
        }

        public override string ToString() => "unstructured";
    }

    private sealed class ChannelPattern : SparsityPattern
    {
        internal override string? Misfit(PrunableLayer layer) => null;
        internal override int UnitCount(PrunableLayer layer) => layer.Rows;

        internal override void ScoreUnits(PrunableLayer layer, ReadOnlySpan<float> elementScores, Span<float> unitScores)
        {
            for (int r = 0; r < layer.Rows; r++)
                unitScores[r] = System.Numerics.Tensors.TensorPrimitives.Sum(elementScores.Slice(r * layer.Columns, layer.Columns)) / layer.Columns;
        }

        internal override void ExpandUnits(PrunableLayer layer, ReadOnlySpan<bool> prunedUnits, Span<float> mask)
        {
            for (int r = 0; r < layer.Rows; r++) mask.Slice(r * layer.Columns, layer.Columns).Fill(prunedUnits[r] ? 0f : 1f);
        }

        public override string ToString() => "output channels";
    }

    private sealed class BlockPattern(int rows, int columns) : SparsityPattern
    {
        internal override string? Misfit(PrunableLayer layer) =>
            layer.Rows % rows != 0 || layer.Columns % columns != 0
                ? $"{rows}×{columns} blocks need the weight matrix's sides ({layer.Rows} outputs × {layer.Columns} inputs·kernel positions) to be multiples of {rows} and {columns}"
                : null;

        internal override int UnitCount(PrunableLayer layer) => layer.Rows / rows * (layer.Columns / columns);

        internal override void ScoreUnits(PrunableLayer layer, ReadOnlySpan<float> elementScores, Span<float> unitScores)
        {
            int blocksPerRow = layer.Columns / columns;
            unitScores.Clear();
            for (int r = 0; r < layer.Rows; r++)
            for (int b = 0; b < blocksPerRow; b++)
                unitScores[r / rows * blocksPerRow + b] += System.Numerics.Tensors.TensorPrimitives.Sum(elementScores.Slice(r * layer.Columns + b * columns, columns));
            System.Numerics.Tensors.TensorPrimitives.Multiply(unitScores, 1f / (rows * columns), unitScores);
        }

        internal override void ExpandUnits(PrunableLayer layer, ReadOnlySpan<bool> prunedUnits, Span<float> mask)
        {
            int blocksPerRow = layer.Columns / columns;
            for (int r = 0; r < layer.Rows; r++)
            for (int b = 0; b < blocksPerRow; b++)
                mask.Slice(r * layer.Columns + b * columns, columns).Fill(prunedUnits[r / rows * blocksPerRow + b] ? 0f : 1f);
        }

        public override string ToString() => $"block {rows}×{columns}";
    }

    /// <summary>N:M groups: selection is within each group (top N by score).</summary>
    internal sealed class NMPattern(int n, int m) : SparsityPattern
    {
        public int N => n;
        public int M => m;
        internal override double? FixedSparsity => 1.0 - (double)n / m;

        /// <summary>
        /// The input-channel count is not a multiple of M: <see cref="LayerSelection"/> then prunes the layer with ragged
        /// last groups, or leaves it dense when asked to (the behaviour before ragged groups).
        /// </summary>
        internal override string? Misfit(PrunableLayer layer) =>
            layer.InChannels % m != 0 ? $"{n}:{m} sparsity needs the input channel count ({layer.InChannels}) to be a multiple of {m}" : null;

        /// <summary>The exact count of weights the pattern keeps in <paramref name="layer"/>, ragged last groups included.</summary>
        public long KeptCount(PrunableLayer layer) => NMSelection.KeptCount(layer.Count, layer.InChannels, n, m);

        // N:M selects within each group (BuildMask), never whole units.
        internal override int UnitCount(PrunableLayer layer) => throw WithinGroups();
        internal override void ScoreUnits(PrunableLayer layer, ReadOnlySpan<float> elementScores, Span<float> unitScores) => throw WithinGroups();
        internal override void ExpandUnits(PrunableLayer layer, ReadOnlySpan<bool> prunedUnits, Span<float> mask) => throw WithinGroups();

        private static InvalidOperationException WithinGroups() => new("N:M sparsity selects within each group of M; use BuildMask.");

        /// <summary>Keeps the N highest-scoring weights of every group of the layer's input channels, ⌈N·r/M⌉ of a ragged last group of r (ties: the earlier position wins).</summary>
        public void BuildMask(PrunableLayer layer, ReadOnlySpan<float> scores, Span<float> mask) =>
            NMSelection.TopN(scores, absolute: false, n, m, mask, layer.InChannels);

        public override string ToString() => $"{n}:{m}";
    }
}
