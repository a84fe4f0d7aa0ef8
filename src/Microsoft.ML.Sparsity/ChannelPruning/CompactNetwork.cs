using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.ChannelPruning;

/// <summary>
/// Rewrites a channel-pruned network as a smaller dense one, as its <see cref="CompactPlan"/> says: pruned output
/// channels leave their layer; the next layers lose the matching batch-norm entries (γ, β, running statistics) and
/// input slices, and add the removed channels' constant effect to their bias.
/// </summary>
internal static class CompactNetwork
{
    /// <summary>The compact network of <paramref name="plan"/>'s network, on <paramref name="pool"/>; the original is not changed.</summary>
    public static SequentialNetwork Build(CompactPlan plan, Engine.WorkerPool pool)
    {
        SequentialNetwork network = plan.Network;
        var definitions = network.Definitions.ToArray();
        for (int i = 0; i < definitions.Length; i++)
        {
            int? outputs = plan.KeptOutputs(i)?.Length;
            bool addBias = plan.Folds(i).Length > 0;
            definitions[i] = definitions[i] switch
            {
                DenseDefinition d => d with { Units = outputs ?? d.Units, UseBias = d.UseBias || addBias },
                Conv2dDefinition c => c with { OutChannels = outputs ?? c.OutChannels, UseBias = c.UseBias || addBias },
                var other => other,
            };
        }
        // Layer names come from the definitions (kind and index), so the compact layers keep the originals' names.
        var compact = new SequentialNetwork(definitions, network.InputShape, new LayerBuildContext(pool, WeightInitializer.GlorotUniform, 0));
        for (int i = 0; i < network.Layers.Count; i++)
        {
            Layer from = network.Layers[i], to = compact.Layers[i];
            switch (from)
            {
                case DenseLayer or Conv2dLayer:
                    CopyWeighted(plan, i, from, to);
                    break;
                case BatchNormLayer norm:
                    var target = (BatchNormLayer)to;
                    int[]? kept = plan.KeptInputs(i);
                    Gather(norm.Gamma.Value, kept, target.Gamma.Value);
                    Gather(norm.Beta.Value, kept, target.Beta.Value);
                    GatherMask(norm.Gamma, kept, target.Gamma);
                    GatherMask(norm.Beta, kept, target.Beta);
                    Gather(norm.RunningMean, kept, target.RunningMean);
                    Gather(norm.RunningVariance, kept, target.RunningVariance);
                    break;
                default:
                    for (int p = 0; p < from.Parameters.Count; p++) CopyParameter(from.Parameters[p], to.Parameters[p]);
                    break;
            }
        }
        return compact;
    }

    /// <summary>
    /// A dense or convolution layer's kept rows and kept input slices (a dense layer's columns; a convolution's input
    /// channels at every kernel position), with its mask, and the folded constants added to its bias.
    /// </summary>
    private static void CopyWeighted(CompactPlan plan, int index, Layer from, Layer to)
    {
        var (weight, bias) = Weights(from);
        var (newWeight, newBias) = Weights(to);
        int rows = weight.Shape[0], inputs = weight.Shape[^1], positions = weight.Length / rows / inputs;
        int[] keptRows = plan.KeptOutputs(index) ?? Enumerable.Range(0, rows).ToArray();
        int[] keptInputs = plan.KeptInputs(index) ?? Enumerable.Range(0, inputs).ToArray();
        float[]? mask = weight.Mask is null ? null : new float[newWeight.Length];
        int next = 0;
        foreach (int r in keptRows)
        for (int p = 0; p < positions; p++)
        {
            int offset = (r * positions + p) * inputs;
            foreach (int c in keptInputs)
            {
                newWeight.Value[next] = weight.Value[offset + c];
                if (mask is not null) mask[next] = weight.Mask![offset + c];
                next++;
            }
        }
        // A mask that keeps everything left is no mask: the compact layer is dense.
        if (mask is not null && mask.AsSpan().ContainsAnyExcept(1f))
        {
            newWeight.Mask = mask;
            newWeight.SparsityNote = weight.SparsityNote;
        }

        if (newBias is null) return;
        var folds = plan.Folds(index);
        for (int n = 0; n < keptRows.Length; n++)
        {
            int r = keptRows[n];
            double sum = bias?.Value[r] ?? 0;
            // Every output position of a dense layer or an unpadded convolution sees the removed input through all its weights.
            foreach (var (c, value) in folds)
                for (int p = 0; p < positions; p++)
                    sum += (double)weight.Value[(r * positions + p) * inputs + c] * value;
            newBias.Value[n] = (float)sum;
        }
        if (bias is not null) GatherMask(bias, keptRows, newBias);
    }

    private static (Parameter Weight, Parameter? Bias) Weights(Layer layer) => layer switch
    {
        DenseLayer d => (d.Weight, d.Bias),
        Conv2dLayer c => (c.Weight, c.Bias),
        _ => throw new InvalidOperationException($"Layer '{layer.Name}' has no weight."),
    };

    private static void CopyParameter(Parameter from, Parameter to)
    {
        from.Value.CopyTo(to.Value, 0);
        to.Mask = (float[]?)from.Mask?.Clone();
        to.SparsityNote = from.SparsityNote;
    }

    /// <summary>The kept entries of <paramref name="from"/>'s mask, as <paramref name="to"/>'s mask unless they keep everything (a pruned channel kept before a padded convolution stays masked).</summary>
    private static void GatherMask(Parameter from, int[]? kept, Parameter to)
    {
        if (from.Mask is null) return;
        var mask = new float[to.Length];
        Gather(from.Mask, kept, mask);
        if (mask.AsSpan().ContainsAnyExcept(1f)) to.Mask = mask;
    }

    private static void Gather(float[] source, int[]? kept, float[] target)
    {
        if (kept is null) source.CopyTo(target, 0);
        else for (int i = 0; i < kept.Length; i++) target[i] = source[kept[i]];
    }
}
