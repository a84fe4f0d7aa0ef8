using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Network;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Network;

public sealed class RowOpsTests
{
    /// <summary>
    /// The one-pass bias and ReLU a dense layer applies at inference equals the bias added, then ActivationLayer's
    /// ReLU, bit for bit: NaN kept, −0 made +0, ±∞ and values that cancel, in the vector body and the tail of rows of
    /// every width up to three vectors, over several rows.
    /// </summary>
    [Fact]
    public void AddingThenTheReLUInOnePassEqualsTheTwoPasses()
    {
        float[] specials = [float.NaN, -0f, 0f, float.PositiveInfinity, float.NegativeInfinity, -1e-45f, 3f, -3f];
        foreach (int width in Enumerable.Range(1, 49))
        {
            const int rows = 3;
            float[] matrix = [.. Enumerable.Range(0, rows * width).Select(i => i % 2 == 0 ? specials[i / 2 % specials.Length] : MathF.Sin(i) * 4)];
            float[] cycled = [.. Enumerable.Range(0, width).Select(i => specials[(i * 5) % specials.Length])];
            float[] negativeZeros = [.. Enumerable.Repeat(-0f, width)]; // −0 + −0 is −0: the ReLU must make it +0
            foreach (float[] bias in new[] { cycled, negativeZeros })
            {
                float[] expected = (float[])matrix.Clone(), actual = (float[])matrix.Clone();
                RowOps.AddToRows(expected, bias, rows);
                TensorPrimitives.Max(expected, 0f, expected);
                RowOps.AddToRowsThenReLU(actual, bias, rows);
                Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
            }
        }
    }
}
