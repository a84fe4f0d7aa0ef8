using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

public sealed class TextLoaderTests
{
    private static readonly SparsityContext Context = new(seed: 1, threads: 1);

    [Fact]
    public void Loads_label_and_features_in_order()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.csv", "1,0.5,-2,3e2\n0, 1.25 ,0,-0.0\n\n2,7,8,9\n");

        Dataset data = Context.Data.LoadFromTextFile(path);

        Assert.Equal(3, data.Count);
        Assert.Equal([3], data.FeatureShape);
        Assert.Equal([1f, 0f, 2f], data.GetLabels());
        Assert.Equal([0.5f, -2f, 300f], data.GetFeatures(0).ToArray());
        Assert.Equal([1.25f, 0f, -0f], data.GetFeatures(1).ToArray());
        Assert.Null(data.ClassNames);
    }

    [Fact]
    public void Honors_label_column_separator_header_and_shape()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.tsv", "a\tb\tlabel\tc\td\n1\t2\t9\t3\t4\n5\t6\t8\t7\t8\n");

        Dataset data = Context.Data.LoadFromTextFile(path, labelColumnIndex: 2, separatorChar: '\t', hasHeader: true, featureShape: [2, 2, 1]);

        Assert.Equal([2, 2, 1], data.FeatureShape);
        Assert.Equal([9f, 8f], data.GetLabels());
        Assert.Equal([5f, 6f, 7f, 8f], data.GetFeatures(1).ToArray());
    }

    [Fact]
    public void Parses_with_the_invariant_culture()
    {
        var previous = Thread.CurrentThread.CurrentCulture;
        try
        {
            Thread.CurrentThread.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            using var dir = new TempFolder();
            string path = dir.WriteText("data.csv", "1;2.5\n");
            Dataset data = Context.Data.LoadFromTextFile(path, separatorChar: ';');
            Assert.Equal(2.5f, data.GetFeatures(0)[0]);
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = previous;
        }
    }

    [Fact]
    public void Wrong_column_count_names_file_and_line()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.csv", "x,y,z\n1,2,3\n4,5\n");
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromTextFile(path, hasHeader: true));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("expected 3 columns, found 2", e.Message);
    }

    [Fact]
    public void Non_numeric_cell_names_file_line_column_and_text()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.csv", "label,f1,f2\n1,2,3\n0,4,abc\n");
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromTextFile(path, hasHeader: true));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("column 2", e.Message);
        Assert.Contains("\"f2\"", e.Message);
        Assert.Contains("'abc'", e.Message);
    }

    [Theory]
    [InlineData("1,NaN\n")]
    [InlineData("1,Infinity\n")]
    [InlineData("1,\n")]
    [InlineData("1,1,5\n")]
    public void Non_finite_or_empty_cells_are_rejected(string text)
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.csv", "0,1\n" + text);
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromTextFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 2", e.Message);
    }

    [Fact]
    public void Empty_file_and_header_only_file_are_rejected()
    {
        using var dir = new TempFolder();
        string empty = dir.WriteText("empty.csv", "");
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromTextFile(empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("empty", e.Message);

        string headerOnly = dir.WriteText("header.csv", "label,x\n");
        e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromTextFile(headerOnly, hasHeader: true));
        Assert.Contains("no data rows", e.Message);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.WriteText("data.csv", "1,2,3\n");
        Assert.Throws<FileNotFoundException>(() => Context.Data.LoadFromTextFile(dir.File("missing.csv")));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Context.Data.LoadFromTextFile(path, labelColumnIndex: 3));
        Assert.Equal("labelColumnIndex", e.ParamName);
        var shape = Assert.Throws<ArgumentException>(() => Context.Data.LoadFromTextFile(path, featureShape: [3]));
        Assert.Equal("featureShape", shape.ParamName);
    }
}
