using System.Globalization;

namespace Microsoft.ML.Sparsity.Masks;

/// <summary>Which prunable layers a method acts on: exclusions by name or index, and the pattern's fit.</summary>
internal static class LayerSelection
{
    /// <summary>
    /// The layers not excluded whose shape fits <paramref name="pattern"/>. Excluded and misfit layers get a
    /// <see cref="Network.Parameter.SparsityNote"/> saying why they stay dense; a misfit without the fallback throws,
    /// except for N:M, which prunes a layer whose input-channel count M does not divide with ragged last groups.
    /// </summary>
    public static List<PrunableLayer> Select(IReadOnlyList<PrunableLayer> all, IEnumerable<string> excludedKeys, string excludedOption,
        SparsityPattern pattern, bool leaveMisfitDense, string patternOption)
    {
        var excluded = excludedKeys.Select(key => Resolve(all, key, excludedOption)).ToHashSet();
        var selected = new List<PrunableLayer>();
        foreach (var layer in all)
        {
            layer.Weight.SparsityNote = null;
            if (excluded.Contains(layer.Index)) { layer.Weight.SparsityNote = "dense: excluded"; continue; }
            if (pattern.Misfit(layer) is string misfit)
            {
                if (!leaveMisfitDense && pattern is SparsityPattern.NMPattern) { selected.Add(layer); continue; }
                if (!leaveMisfitDense)
                    throw new ArgumentException(
                        $"Layer '{layer.Name}': {misfit}. Exclude the layer, or set LeaveMisfitLayersDense to keep such layers dense.", patternOption);
                layer.Weight.SparsityNote = "dense: " + misfit;
                continue;
            }
            selected.Add(layer);
        }
        return selected;
    }

    /// <summary>A layer name, or an index among the prunable layers as a string ("0" first, "-1" last).</summary>
    public static int Resolve(IReadOnlyList<PrunableLayer> all, string key, string option)
    {
        if (int.TryParse(key, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int index))
        {
            int resolved = index < 0 ? all.Count + index : index;
            if (resolved < 0 || resolved >= all.Count)
                throw new ArgumentException($"{option}: index {key} is outside the {all.Count} prunable layers ({Names(all)}).", option);
            return resolved;
        }
        return all.FirstOrDefault(l => l.Name == key)?.Index
            ?? throw new ArgumentException($"{option}: there is no prunable layer named '{key}'; the prunable layers are {Names(all)}.", option);
    }

    private static string Names(IReadOnlyList<PrunableLayer> all) => string.Join(", ", all.Select(l => $"'{l.Name}'"));
}
