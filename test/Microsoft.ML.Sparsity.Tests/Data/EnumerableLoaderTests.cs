using Microsoft.ML.Sparsity.Data;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Data;

public sealed class EnumerableLoaderTests
{
    private static readonly SparsityContext Context = new(seed: 1, threads: 1);

    public sealed class PropertyRow
    {
        public float[]? Features { get; set; }
        public int Label { get; set; }
    }

    public sealed class FieldRow
    {
        public double[]? Pixels;
        public bool IsGood;
    }

    public sealed class ScalarRow
    {
        public float X { get; set; }
        public double Y { get; set; }
    }

    public sealed class WrongTypes
    {
        public string Features { get; set; } = "";
        public string Label { get; set; } = "";
    }

    [Fact]
    public void Loads_properties()
    {
        var rows = new[]
        {
            new PropertyRow { Features = [1, 2, 3, 4], Label = 2 },
            new PropertyRow { Features = [5, 6, 7, 8], Label = 0 },
        };
        Dataset data = Context.Data.LoadFromEnumerable(rows, featureShape: [2, 2]);
        Assert.Equal(2, data.Count);
        Assert.Equal([2, 2], data.FeatureShape);
        Assert.Equal([2f, 0f], data.GetLabels());
        Assert.Equal([5f, 6f, 7f, 8f], data.GetFeatures(1).ToArray());
    }

    [Fact]
    public void Loads_fields_double_arrays_and_bool_labels()
    {
        var rows = new[] { new FieldRow { Pixels = [0.5, 1.5], IsGood = true }, new FieldRow { Pixels = [2, 3], IsGood = false } };
        Dataset data = Context.Data.LoadFromEnumerable(rows, "Pixels", "IsGood");
        Assert.Equal([2], data.FeatureShape);
        Assert.Equal([1f, 0f], data.GetLabels());
        Assert.Equal([0.5f, 1.5f], data.GetFeatures(0).ToArray());
    }

    [Fact]
    public void Loads_a_single_float_feature_and_double_label()
    {
        var rows = Enumerable.Range(0, 5).Select(i => new ScalarRow { X = i, Y = i * 2.5 });
        Dataset data = Context.Data.LoadFromEnumerable(rows, "X", "Y");
        Assert.Equal([1], data.FeatureShape);
        Assert.Equal(10f, data.GetLabel(4));
        Assert.Equal(4f, data.GetFeatures(4)[0]);
    }

    [Fact]
    public void Missing_member_names_the_member_and_the_type()
    {
        var rows = new[] { new PropertyRow { Features = [1], Label = 1 } };
        var e = Assert.Throws<ArgumentException>(() => Context.Data.LoadFromEnumerable(rows, featureColumnName: "Pixels"));
        Assert.Contains("'Pixels'", e.Message);
        Assert.Contains(nameof(PropertyRow), e.Message);
        Assert.Equal("featureColumnName", e.ParamName);

        e = Assert.Throws<ArgumentException>(() => Context.Data.LoadFromEnumerable(rows, labelColumnName: "Target"));
        Assert.Contains("'Target'", e.Message);
        Assert.Equal("labelColumnName", e.ParamName);
    }

    [Fact]
    public void Unsupported_member_types_are_rejected()
    {
        var rows = new[] { new WrongTypes() };
        var e = Assert.Throws<ArgumentException>(() => Context.Data.LoadFromEnumerable(rows));
        Assert.Contains("float[]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Context.Data.LoadFromEnumerable(new[] { new PropertyRow { Features = [1] } }, labelColumnName: "Features"));
        Assert.Contains("label member", e.Message);
    }

    [Fact]
    public void Feature_length_mismatch_names_the_row_and_lengths()
    {
        var rows = new[]
        {
            new PropertyRow { Features = [1, 2, 3] },
            new PropertyRow { Features = [1, 2, 3] },
            new PropertyRow { Features = [1, 2] },
        };
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromEnumerable(rows));
        Assert.Contains("Row 2", e.Message);
        Assert.Contains("2 values", e.Message);
        Assert.Contains("row 0 has 3", e.Message);
    }

    [Fact]
    public void Null_row_or_null_features_name_the_row()
    {
        var nullRow = new[] { new PropertyRow { Features = [1] }, null! };
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromEnumerable(nullRow));
        Assert.Contains("Row 1 is null", e.Message);

        var nullFeatures = new[] { new PropertyRow { Features = [1] }, new PropertyRow { Features = [2] }, new PropertyRow() };
        e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromEnumerable(nullFeatures));
        Assert.Contains("Row 2", e.Message);
        Assert.Contains("'Features' is null", e.Message);
    }

    [Fact]
    public void No_rows_and_non_finite_values_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => Context.Data.LoadFromEnumerable(Array.Empty<PropertyRow>()));
        var rows = new[] { new PropertyRow { Features = [1] }, new PropertyRow { Features = [float.NaN] } };
        var e = Assert.Throws<InvalidDataException>(() => Context.Data.LoadFromEnumerable(rows));
        Assert.Contains("Row 1", e.Message);
    }
}
