using System.Numerics.Tensors;

namespace Microsoft.ML.Sparsity.Network;

/// <summary>A training loss over a batch of network outputs; it returns the mean loss and writes d(mean loss)/d(output).</summary>
internal abstract class Loss
{
    public abstract double Compute(float[] outputs, float[] labels, int batch, int outputSize, float[] gradient);
}

/// <summary>Softmax cross-entropy on logits, with integer class labels; computed stably (log-sum-exp).</summary>
internal sealed class SoftmaxCrossEntropyLoss : Loss
{
    public override double Compute(float[] logits, float[] labels, int batch, int classes, float[] gradient)
    {
        double total = 0;
        float scale = 1f / batch;
        for (int b = 0; b < batch; b++)
        {
            var z = logits.AsSpan(b * classes, classes);
            var g = gradient.AsSpan(b * classes, classes);
            int label = (int)labels[b];
            float max = TensorPrimitives.Max(z);
            TensorPrimitives.Subtract(z, max, g);
            TensorPrimitives.Exp(g, g);
            float sum = TensorPrimitives.Sum(g);
            total += Math.Log(sum) - (z[label] - max);
            TensorPrimitives.Multiply(g, scale / sum, g);
            g[label] -= scale;
        }
        return total / batch;
    }
}

/// <summary>Binary cross-entropy on one logit per example (sigmoid folded in), labels 0 or 1.</summary>
internal sealed class BinaryCrossEntropyLoss : Loss
{
    public override double Compute(float[] logits, float[] labels, int batch, int outputSize, float[] gradient)
    {
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            float z = logits[b], y = labels[b];
            // log(1 + e^z) − y·z, stably.
            total += Math.Max(z, 0) - z * y + Math.Log(1 + Math.Exp(-Math.Abs(z)));
            gradient[b] = (1f / (1f + MathF.Exp(-z)) - y) / batch;
        }
        return total / batch;
    }
}

/// <summary>Mean squared error on one output per example.</summary>
internal sealed class MeanSquaredErrorLoss : Loss
{
    public override double Compute(float[] outputs, float[] labels, int batch, int outputSize, float[] gradient)
    {
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            float d = outputs[b] - labels[b];
            total += d * d;
            gradient[b] = 2 * d / batch;
        }
        return total / batch;
    }
}
