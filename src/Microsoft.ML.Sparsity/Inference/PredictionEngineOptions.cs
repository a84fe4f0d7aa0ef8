namespace Microsoft.ML.Sparsity.Inference;

/// <summary>Options of <see cref="PredictionEngine{TSrc, TDst}"/> and <see cref="PredictionEnginePool{TSrc, TDst}"/>.</summary>
public sealed class PredictionEngineOptions
{
    /// <summary>The public field or property of the input type holding the features (<c>float[]</c>). Default "Features".</summary>
    public string FeatureColumnName = "Features";

    /// <summary>The public field or property of the output type that receives the class probabilities (<c>float[]</c>). Default "Score".</summary>
    public string ScoreColumnName = "Score";

    /// <summary>
    /// The public field or property of the output type that receives the predicted class: <c>int</c>, <c>uint</c>,
    /// <c>long</c>, <c>float</c>, or <c>string</c> (the class name, or the index as text when the model has none).
    /// Default "PredictedLabel".
    /// </summary>
    public string PredictedLabelColumnName = "PredictedLabel";

    /// <summary>
    /// What a NaN or infinite feature does: <see cref="NonFiniteInputHandling.Throw"/> (the default) raises an
    /// <see cref="ArgumentException"/> naming the feature column and index; <see cref="NonFiniteInputHandling.Propagate"/>
    /// lets it through, and the scores are then undefined (usually NaN; a sparse format that skips the input may not see it).
    /// </summary>
    public NonFiniteInputHandling NonFiniteInput = NonFiniteInputHandling.Throw;
}

/// <summary>What prediction does with NaN or infinite features.</summary>
public enum NonFiniteInputHandling
{
    /// <summary>Raise an <see cref="ArgumentException"/> naming the feature.</summary>
    Throw,

    /// <summary>Compute anyway; the scores are undefined (usually NaN).</summary>
    Propagate,
}
