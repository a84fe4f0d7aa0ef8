namespace Microsoft.ML.Sparsity.Transforms;

/// <summary>Data transforms that go in front of a trainer: <c>context.Transforms</c>, as ML.NET's <c>TransformsCatalog</c>.</summary>
public sealed class TransformsCatalog
{
    private readonly SparsityContext _context;

    internal TransformsCatalog(SparsityContext context) => _context = context;

    /// <summary>
    /// Converts images to normalised block-DCT channels ("Learning in the Frequency Domain", Xu et al., CVPR 2020):
    /// YCbCr (RGB images), B×B block DCT-II, channel u·B + v of each component, per-channel normalisation fitted on the
    /// training data, optionally a channel selection. <c>Append</c> a trainer to train on the frequency channels.
    /// </summary>
    /// <param name="blockSize">The DCT block side: 8 or 4.</param>
    /// <param name="selection">Which channels to keep.</param>
    /// <param name="channelCount">For <see cref="FrequencyChannelSelection.Gate"/>: how many channels to keep; null keeps a quarter.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not 4 or 8, or <paramref name="channelCount"/> is below 1.</exception>
    public FrequencyDomainEstimator ConvertToFrequencyDomain(int blockSize = 8, FrequencyChannelSelection selection = FrequencyChannelSelection.All,
        int? channelCount = null) =>
        new(_context, new FrequencyDomainEstimator.Options { BlockSize = blockSize, Selection = selection, ChannelCount = channelCount });

    /// <summary>Converts images to normalised block-DCT channels, configured by <paramref name="options"/>; see the other overload.</summary>
    public FrequencyDomainEstimator ConvertToFrequencyDomain(FrequencyDomainEstimator.Options options) => new(_context, options);
}
