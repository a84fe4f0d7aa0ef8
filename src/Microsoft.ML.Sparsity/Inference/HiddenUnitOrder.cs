using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Renumbers the hidden units of a network that only predicts, so that each dense layer feeding another dense layer
/// has its units in the order its sliced-ELLPACK tiles take them (<see cref="SlicedEllMatrix.TileRowOrder"/>: most
/// non-zeros first). Its tiles then write their sums straight into the layer's output instead of scattering them
/// row by row; the next dense layer's inputs are renumbered to match, so the network computes the same function.
/// </summary>
/// <remarks>
/// Only units between two dense layers move, through layers that act on each unit alone (activations, dropout):
/// the network's inputs and outputs keep their order. A layer that already has its units in tile order is left
/// alone. The next layer sums its inputs in the new order, so predictions equal the network's within float rounding.
/// </remarks>
internal static class HiddenUnitOrder
{
    /// <summary>
    /// <paramref name="network"/> itself when no hidden unit moves; otherwise a copy with the dense layers' units
    /// renumbered (weights, biases and their masks and level codes).
    /// </summary>
    public static SequentialNetwork Sorted(SequentialNetwork network)
    {
        var moves = new List<(int Layer, int Next, int[] Order)>();
        for (int i = 0; i < network.Layers.Count; i++)
        {
            if (network.Layers[i] is not DenseLayer dense)
                continue;
            int next = i + 1;
            while (next < network.Layers.Count && network.Layers[next] is ActivationLayer or DropoutLayer)
                next++;
            if (next == network.Layers.Count || network.Layers[next] is not DenseLayer)
                continue;
            int[] order = SlicedEllMatrix.TileRowOrder(dense.Weight.Value, dense.Outputs, dense.Inputs);
            if (order.Where((unit, position) => unit != position).Any())
                moves.Add((i, next, order));
        }

        if (moves.Count == 0)
            return network;
        SequentialNetwork copy = network.Clone(network.Pool);
        foreach ((int layer, int next, int[] order) in moves)
        {
            var dense = (DenseLayer)copy.Layers[layer];
            int inputs = dense.Inputs, units = order.Length;
            Move(dense.Weight, index => order[index / inputs] * inputs + index % inputs); // rows
            if (dense.Bias is not null)
                Move(dense.Bias, index => order[index]);
            Move(((DenseLayer)copy.Layers[next]).Weight, index => index / units * units + order[index % units]); // columns
        }

        return copy;
    }

    /// <summary>Each per-value array of <paramref name="parameter"/> takes at index i the value it had at <paramref name="source"/>(i).</summary>
    private static void Move(Parameter parameter, Func<int, int> source)
    {
        Moved(parameter.Value, source).CopyTo(parameter.Value, 0);
        if (parameter.Mask is not null)
            parameter.Mask = Moved(parameter.Mask, source);
        if (parameter.LevelCodes is not null)
            parameter.LevelCodes = Moved(parameter.LevelCodes, source); // a new array: clones share the level codes
    }

    private static T[] Moved<T>(T[] values, Func<int, int> source)
    {
        var moved = new T[values.Length];
        for (int i = 0; i < moved.Length; i++)
            moved[i] = values[source(i)];
        return moved;
    }
}
