using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

public sealed class NonFiniteTests
{
    /// <summary>
    /// The copy a single prediction makes of its features: every value copied, and a NaN or ±∞ found wherever it is
    /// (the vector body and the scalar tail of every length up to three vectors), while extreme finite values pass.
    /// </summary>
    [Fact]
    public void TheCopyFindsEveryNonFiniteValueWhereverItIs()
    {
        foreach (int length in Enumerable.Range(0, 50))
        {
            float[] source = [.. Enumerable.Range(0, length).Select(i => (i % 3 - 1) * (i % 2 == 0 ? float.MaxValue : float.Epsilon))];
            var destination = new float[length + 1];
            destination[length] = 42f;
            Assert.True(NonFinite.CopyIsFinite(source, destination), $"length {length}: all finite");
            Assert.Equal(source, destination[..length]);
            Assert.Equal(42f, destination[length]);
            for (int at = 0; at < length; at++)
            {
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    float kept = source[at];
                    source[at] = bad;
                    Assert.False(NonFinite.CopyIsFinite(source, destination), $"length {length}: {bad} at {at}");
                    Assert.Equal(source, destination[..length]);
                    source[at] = kept;
                }
            }
        }
    }

    [Fact]
    public void AShortDestinationIsNamed()
    {
        var error = Assert.Throws<ArgumentException>(() => NonFinite.CopyIsFinite(new float[5], new float[4]));
        Assert.Equal("destination", error.ParamName);
        Assert.Contains("5", error.Message);
    }
}
