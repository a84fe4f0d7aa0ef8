namespace Microsoft.ML.Sparsity.Engine;

internal static class Shape
{
    public static int Size(IReadOnlyList<int> shape)
    {
        int size = 1;
        foreach (int d in shape) size = checked(size * d);
        return size;
    }

    public static string Format(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";
}
