namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>A model file is damaged, incomplete or from an unsupported format version. <see cref="Entry"/> names the part at fault.</summary>
public sealed class ModelFormatException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ModelFormatException() { }

    /// <summary>Creates the exception with a message.</summary>
    public ModelFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) { }

    internal ModelFormatException(string? entry, string message, Exception? innerException = null)
        : base(entry is null ? message : $"Model file entry '{entry}': {message}", innerException) => Entry = entry;

    /// <summary>The zip entry at fault (e.g. <c>manifest.json</c>, <c>weights/dense0.weight.f32</c>), or null when the file as a whole is unreadable.</summary>
    public string? Entry { get; }
}
