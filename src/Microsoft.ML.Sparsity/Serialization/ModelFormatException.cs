namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// A model file or checkpoint is damaged, truncated, edited or from an unsupported format version. <see cref="FilePath"/>
/// names the file and <see cref="Entry"/> the part at fault; the message says both and what was expected.
/// </summary>
public sealed class ModelFormatException : IOException
{
    private readonly string _detail = "";

    /// <summary>Creates the exception.</summary>
    public ModelFormatException() { }

    /// <summary>Creates the exception with a message.</summary>
    public ModelFormatException(string message) : base(message) => _detail = message;

    /// <summary>Creates the exception with a message and its cause.</summary>
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) => _detail = message;

    internal ModelFormatException(string? entry, string message, Exception? innerException = null)
        : this(null, entry, message, innerException) { }

    internal ModelFormatException(string? filePath, string? entry, string message, Exception? innerException)
        : base(Describe(filePath, entry, message), innerException) => (FilePath, Entry, _detail) = (filePath, entry, message);

    /// <summary>The file at fault, or null when the model was read from a stream.</summary>
    public string? FilePath { get; }

    /// <summary>
    /// The zip entry at fault (e.g. <c>manifest.json</c>, <c>t0/tensors/0.f32</c>; an entry of a model inside a checkpoint
    /// as <c>source.zip/manifest.json</c>), or null when the file as a whole is unreadable.
    /// </summary>
    public string? Entry { get; }

    /// <summary>The same error, located in the file <paramref name="path"/> (unchanged when it already names a file).</summary>
    internal ModelFormatException InFile(string path) => FilePath is not null ? this : new(path, Entry, _detail, this);

    /// <summary>The same error, located inside the entry <paramref name="outer"/> that holds the file it was found in.</summary>
    internal ModelFormatException InEntry(string outer) => new(FilePath, Entry is null ? outer : $"{outer}/{Entry}", _detail, this);

    private static string Describe(string? filePath, string? entry, string message) => (filePath, entry) switch
    {
        (null, null) => message,
        (null, _) => $"Model file entry '{entry}': {message}",
        (_, null) => $"File '{filePath}': {message}",
        _ => $"File '{filePath}', entry '{entry}': {message}",
    };
}
