using System.Collections.Concurrent;
using System.Numerics;
using System.Numerics.Tensors;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// A trained multiclass neural network. <see cref="Transform"/> adds class probabilities (scores) and predicted
/// labels to a dataset, for <see cref="MulticlassClassificationCatalog.Evaluate"/>; <see cref="Predict"/> scores one example.
/// </summary>
/// <remarks>
/// <para>
/// Each dense and convolution layer's weight is held for prediction in a format chosen from its sparsity
/// (<see cref="WeightFormats"/>; <see cref="WithWeightFormats(WeightFormat)"/> forces one): sparse models predict faster
/// than dense ones.
/// </para>
/// <para>
/// <see cref="Predict"/> and <see cref="Transform"/> are thread-safe: concurrent callers each get sessions of their
/// own (a copy of the network with its own buffers; the sparse prediction formats are shared). For typed
/// single-example prediction use <c>context.Model.CreatePredictionEngine</c>.
/// </para>
/// </remarks>
public sealed class NeuralNetworkMulticlassModel : ITransformer
{
    /// <summary>
    /// Widest activation × examples per batched session call: at most about 1 MB, a Zen 5 core's L2 cache (measured
    /// for the CNN, whose fused convolutions write 25 KB per example: chunks of 32 beat 64 and 16).
    /// </summary>
    private const int ChunkFloats = 1 << 18;
    private readonly SequentialNetwork _network;
    private readonly object _lock = new();
    private readonly string[]? _classNames;
    private readonly ConcurrentBag<InferenceSession> _sessions = [];
    private InferenceSession? _lastSession; // the session most recently given back: one interlocked exchange rents it (a bag round trip costs about five times more)
    private readonly ConcurrentBag<InferenceSession> _batchSessions = [];
    private int _chunk; // examples per batched session call; 0 until the first call
    private readonly Engine.IWeightMatrix?[] _predictionWeights;

    internal NeuralNetworkMulticlassModel(SequentialNetwork network, int classCount, string[]? classNames, IReadOnlyList<TrainingProgress> history,
        TrainingState? training = null, System.Text.Json.Nodes.JsonObject? options = null,
        IReadOnlyDictionary<string, WeightFormat>? requestedFormats = null)
    {
        _network = network;
        ClassCount = classCount;
        _classNames = classNames;
        TrainingHistory = history;
        Training = training;
        Options = options;
        Layers = network.Layers.Select(l => new LayerSummary(l)).ToArray();
        RequestedFormats = requestedFormats ?? new Dictionary<string, WeightFormat>();
        (WeightFormats, _predictionWeights) = WeightFormatRule.Compile(network, RequestedFormats);
    }

    /// <summary>The storage each dense and convolution layer's weight has for prediction, and its sparsity.</summary>
    public IReadOnlyList<LayerWeightFormat> WeightFormats { get; }

    /// <summary>The formats asked for by layer name ("*" for all layers); empty when every layer is <see cref="WeightFormat.Auto"/>.</summary>
    internal IReadOnlyDictionary<string, WeightFormat> RequestedFormats { get; }

    /// <summary>The same model with every dense and convolution layer's prediction weight in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">A layer cannot take the format (e.g. <see cref="WeightFormat.NM"/> on a weight that is not N:M sparse); the message names the layer.</exception>
    public NeuralNetworkMulticlassModel WithWeightFormats(WeightFormat format) =>
        WithWeightFormats(new Dictionary<string, WeightFormat> { [WeightFormatRule.AllLayers] = format });

    /// <summary>The same model with the named layers' prediction weights in the given formats (others stay <see cref="WeightFormat.Auto"/>).</summary>
    /// <param name="formats">Formats by layer name (see <see cref="Layers"/>); the key "*" applies to every layer not named.</param>
    /// <exception cref="ArgumentException">A name is not a dense or convolution layer of the model, or a layer cannot take its format.</exception>
    public NeuralNetworkMulticlassModel WithWeightFormats(IReadOnlyDictionary<string, WeightFormat> formats)
    {
        ArgumentNullException.ThrowIfNull(formats);
        lock (_lock)
            return new(_network.Clone(_network.Pool), ClassCount, _classNames, TrainingHistory, Training, Options, new Dictionary<string, WeightFormat>(formats));
    }

    /// <summary>The number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>The class names the training data carried, if any.</summary>
    public IReadOnlyList<string>? ClassNames => _classNames;

    /// <summary>The shape of one example's features the model expects.</summary>
    public IReadOnlyList<int> InputShape => _network.InputShape;

    /// <summary>The layers with their parameter counts and costs.</summary>
    public IReadOnlyList<LayerSummary> Layers { get; }

    /// <summary>The total number of trainable values.</summary>
    public long ParameterCount => Layers.Sum(l => l.ParameterCount);

    /// <summary>The progress reported at the end of every training epoch.</summary>
    public IReadOnlyList<TrainingProgress> TrainingHistory { get; }

    internal SequentialNetwork Network => _network;

    /// <summary>
    /// The most examples one batched session call takes (<see cref="Transform"/>'s chunk): as many as keep the widest
    /// activation a prediction copy writes (convolutions fused with their ReLU and pooling write the pooled one)
    /// within <see cref="ChunkFloats"/>, rounded down to a power of two (whole GEMM row tiles), at most 64.
    /// </summary>
    internal int BatchChunk
    {
        get
        {
            if (_chunk == 0)
            {
                SequentialNetwork network = PredictionNetwork(Engine.WorkerPool.Inline);
                int chunk = Math.Min(64, 1 << BitOperations.Log2((uint)Math.Max(1, ChunkFloats / network.WidestInferenceActivation())));
                _batchSessions.Add(new InferenceSession(network, ClassCount, chunk));
                _chunk = chunk;
            }

            return _chunk;
        }
    }

    /// <summary>The optimiser state for continuing training; null after operations that change the weights outside training (pruning).</summary>
    internal TrainingState? Training { get; }

    /// <summary>The trainer options the model was trained with, as recorded in model files (informational).</summary>
    internal System.Text.Json.Nodes.JsonObject? Options { get; }

    /// <summary>Scores every row: the result carries class probabilities and predicted labels.</summary>
    /// <remarks>
    /// The rows go in chunks of a few examples (as many as keep a chunk's widest activation within about 1 MB, a power
    /// of two up to 64, and at least one chunk per thread), which the context's threads take one at a time, each
    /// running whole chunks through the network on its own. How rows are chunked can change their scores in the last bits (float rounding).
    /// </remarks>
    public Dataset Transform(Dataset input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckFeatureLength(input.FeatureLength, nameof(input));
        var scores = new float[(long)input.Count * ClassCount];
        var predicted = new int[input.Count];
        Score(input.Features, input.Count, scores, predicted);
        return input.WithScores(scores, ClassCount, predicted);
    }

    /// <summary>Scores <paramref name="count"/> rows of <paramref name="features"/> into probabilities and predicted labels (see <see cref="Transform"/>).</summary>
    internal void Score(float[] features, int count, float[] probabilities, int[] predicted)
    {
        if (count == 0)
            return;
        // At least one chunk per thread (a batch of 16 LeNet rows is two chunks of 8, not one of 16), and chunks of
        // near-equal size. The pool hands chunks out one at a time, so a thread slowed by other work takes fewer.
        int most = BatchChunk, threads = _network.Pool.ThreadCount, chunks = Math.Max((count + most - 1) / most, Math.Min(threads, count));
        int chunk = (count + chunks - 1) / chunks;
        chunks = (count + chunk - 1) / chunk;
        _network.Pool.For(chunks, c =>
        {
            InferenceSession session = _batchSessions.TryTake(out InferenceSession? s) ? s : new InferenceSession(PredictionNetwork(Engine.WorkerPool.Inline), ClassCount, most);
            try
            {
                session.Score(features, c * chunk, Math.Min(chunk, count - c * chunk), probabilities, predicted);
            }
            finally
            {
                _batchSessions.Add(session);
            }
        });
    }

    /// <summary>Scores one example: writes the class probabilities into <paramref name="scores"/> and returns the predicted label.</summary>
    /// <param name="features">The example's features (<see cref="InputShape"/> values).</param>
    /// <param name="scores">Receives <see cref="ClassCount"/> probabilities.</param>
    /// <remarks>Thread-safe; allocates nothing once each calling thread has been served.</remarks>
    public int Predict(ReadOnlySpan<float> features, Span<float> scores)
    {
        CheckFeatureLength(features.Length, nameof(features));
        if (scores.Length < ClassCount)
            throw new ArgumentException($"The scores span has {scores.Length} elements; {ClassCount} are needed.", nameof(scores));
        InferenceSession session = RentSession();
        try
        {
            return session.Predict(features, scores[..ClassCount]);
        }
        finally
        {
            ReturnSession(session);
        }
    }

    /// <summary>A session of this model's own (its network's buffers), the last one given back, from the bag or new; give it back with <see cref="ReturnSession"/>.</summary>
    private InferenceSession RentSession() =>
        Interlocked.Exchange(ref _lastSession, null) ?? (_sessions.TryTake(out InferenceSession? session) ? session : CreateSession());

    private void ReturnSession(InferenceSession session)
    {
        if (Interlocked.CompareExchange(ref _lastSession, session, null) is not null)
            _sessions.Add(session);
    }

    /// <summary>
    /// A session for one caller: buffers of its own, the model's prediction weights shared. Sparse layers run on the
    /// caller's thread; a large dense layer may share its work with the context's threads, as the engine decides for
    /// any product (a concurrent caller finds them busy and runs inline).
    /// </summary>
    internal InferenceSession CreateSession() => new(PredictionNetwork(_network.Pool), ClassCount);

    /// <summary>
    /// A copy of the network whose dense and convolution layers predict from the model's prediction formats (shared),
    /// running on <paramref name="pool"/>. The model's own network never carries them, so code that trains or
    /// evaluates it never sees a stale snapshot.
    /// </summary>
    internal SequentialNetwork PredictionNetwork(Engine.WorkerPool pool)
    {
        SequentialNetwork copy = _network.Clone(pool);
        WeightFormatRule.Attach(copy, _predictionWeights);
        copy.FuseForInference();
        return copy;
    }

    /// <summary>The sparsity of the weights, per layer and in total.</summary>
    public Sparsity.SparsityReport GetSparsityReport()
    {
        lock (_lock) return Sparsity.SparsityReport.For(_network);
    }

    /// <summary>The same model with other weights (e.g. pruned); the optimiser state no longer applies and is dropped.</summary>
    internal NeuralNetworkMulticlassModel WithNetwork(SequentialNetwork network) => new(network, ClassCount, _classNames, TrainingHistory, null, Options, RequestedFormats);

    /// <summary>
    /// Class probabilities from logits, computed as exp(z − max z) / Σ: without the shift, a confident model's logits
    /// above ~88 overflow exp to ∞ and the probabilities become NaN.
    /// </summary>
    internal static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        TensorPrimitives.Subtract(logits, TensorPrimitives.Max(logits), probabilities);
        TensorPrimitives.Exp(probabilities, probabilities);
        TensorPrimitives.Divide(probabilities, TensorPrimitives.Sum(probabilities), probabilities);
    }

    /// <summary>A fixed-width table of the layers, their shapes, parameter counts and multiply-adds.</summary>
    public string Summary() => LayerSummary.FormatTable(Layers);

    internal void CheckFeatureLength(int length, string argument)
    {
        if (length != _network.InputSize)
            throw new ArgumentException(
                $"The model's first layer '{_network.Layers[0].Name}' expects {_network.InputSize} feature values per example " +
                $"(shape {Engine.Shape.Format(_network.InputShape)}); got {length}.", argument);
    }
}
