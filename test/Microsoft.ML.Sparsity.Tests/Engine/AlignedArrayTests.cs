using Microsoft.ML.Sparsity.Engine;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Engine;

public sealed unsafe class AlignedArrayTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(4099)]
    public void FirstElementIsCacheLineAlignedAndArrayIsZeroed(int length)
    {
        for (int i = 0; i < 8; i++)
        {
            var floats = new AlignedArray<float>(length);
            var bytes = new AlignedArray<byte>(length + i);
            Assert.Equal(0, (long)floats.Pointer % 64);
            Assert.Equal(0, (long)bytes.Pointer % 64);
            Assert.Equal(length, floats.Length);
            Assert.True(floats.Span.ToArray().All(v => v == 0f));
            Assert.True(bytes.Span.ToArray().All(v => v == 0));
        }
    }

    [Fact]
    public void FromCopiesAndIndexerChecksBounds()
    {
        var array = AlignedArray<float>.From([1f, 2f, 3f]);
        Assert.Equal(new[] { 1f, 2f, 3f }, array.Span.ToArray());
        array[1] = 5f;
        Assert.Equal(5f, array.Span[1]);
        Assert.Throws<IndexOutOfRangeException>(() => array[3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedArray<float>(-1));
    }
}
