using System.Numerics.Tensors;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// What a model makes of its network's outputs: the score values per example (<see cref="Width"/>) and a predicted
/// label, and the columns they become. The batched and single-example paths (<see cref="Inference.InferenceSession"/>)
/// and the block mapping (<see cref="ScoreMapping"/>) run the same head.
/// </summary>
internal abstract class OutputHead
{
    /// <summary>The network's output units.</summary>
    public abstract int Outputs { get; }

    /// <summary>Score values per example.</summary>
    public abstract int Width { get; }

    /// <summary>Writes one example's <see cref="Width"/> score values from its network outputs; returns its predicted label (-1: none).</summary>
    public abstract int Apply(ReadOnlySpan<float> outputs, Span<float> scores);

    /// <summary><paramref name="input"/>'s columns with the model's added.</summary>
    public abstract DataViewSchema AddColumns(DataViewSchema input);

    /// <summary>A getter of added column <paramref name="output"/> at the block's row; null when it is not of type <typeparamref name="TValue"/>.</summary>
    public abstract ValueGetter<TValue>? Getter<TValue>(int output, ScoreBlock block);

    private protected static ValueGetter<TValue>? As<TValue, T>(ValueGetter<T> getter) =>
        typeof(TValue) == typeof(T) ? (ValueGetter<TValue>)(Delegate)getter : null;
}

/// <summary>Multiclass: softmax probabilities (<c>Score</c>, a vector) and the most probable class (<c>PredictedLabel</c>, a key).</summary>
internal sealed class SoftmaxHead(int classes, ClassLabels? labels) : OutputHead
{
    public override int Outputs => classes;
    public override int Width => classes;

    public override int Apply(ReadOnlySpan<float> outputs, Span<float> scores)
    {
        NeuralNetworkMulticlassModel.Softmax(outputs, scores);
        int best = TensorPrimitives.IndexOfMax(scores);
        return float.IsNaN(scores[best]) ? -1 : best;
    }

    public override DataViewSchema AddColumns(DataViewSchema input) => ScoreColumns.AddTo(input, classes, labels);

    public override ValueGetter<TValue>? Getter<TValue>(int output, ScoreBlock block) => output switch
    {
        0 => As<TValue, VBuffer<float>>((ref VBuffer<float> value) =>
        {
            var editor = VBufferEditor.Create(ref value, classes);
            block.Scores.AsSpan(block.Row * classes, classes).CopyTo(editor.Values);
            value = editor.Commit();
        }),
        1 => As<TValue, uint>((ref uint value) => value = (uint)(block.Predicted[block.Row] + 1)),
        _ => null,
    };
}

/// <summary>
/// Binary classification on one logit z: <c>Score</c> = z, <c>Probability</c> = σ(z), <c>PredictedLabel</c> = z &gt; 0
/// (false for a NaN score), as ML.NET's binary trainers give them.
/// </summary>
internal sealed class SigmoidHead : OutputHead
{
    public static readonly SigmoidHead Instance = new();

    public override int Outputs => 1;
    public override int Width => 2;

    public override int Apply(ReadOnlySpan<float> outputs, Span<float> scores)
    {
        float z = outputs[0];
        scores[0] = z;
        scores[1] = Sigmoid(z);
        return z > 0 ? 1 : 0;
    }

    /// <summary>1 / (1 + e^−z), which saturates to 0 or 1 (never NaN) for large |z|.</summary>
    public static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));

    public override DataViewSchema AddColumns(DataViewSchema input) => ScoreColumns.AddBinaryTo(input);

    public override ValueGetter<TValue>? Getter<TValue>(int output, ScoreBlock block) => output switch
    {
        0 or 1 => As<TValue, float>((ref float value) => value = block.Scores[block.Row * 2 + output]),
        2 => As<TValue, bool>((ref bool value) => value = block.Predicted[block.Row] == 1),
        _ => null,
    };
}

/// <summary>Regression on one output: <c>Score</c> is the output.</summary>
internal sealed class IdentityHead : OutputHead
{
    public static readonly IdentityHead Instance = new();

    public override int Outputs => 1;
    public override int Width => 1;

    public override int Apply(ReadOnlySpan<float> outputs, Span<float> scores)
    {
        scores[0] = outputs[0];
        return -1;
    }

    public override DataViewSchema AddColumns(DataViewSchema input) => ScoreColumns.AddRegressionTo(input);

    public override ValueGetter<TValue>? Getter<TValue>(int output, ScoreBlock block) =>
        output == 0 ? As<TValue, float>((ref float value) => value = block.Scores[block.Row]) : null;
}
