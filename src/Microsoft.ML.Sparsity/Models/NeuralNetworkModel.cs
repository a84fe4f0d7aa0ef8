using System.Collections.Concurrent;
using System.Numerics;
using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Inference;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// What the package's trained neural networks share, as ML.NET transformers: the layers and their sparse prediction
/// formats, the training history, and scoring through the engine (<see cref="NeuralNetworkMulticlassModel"/>,
/// <see cref="NeuralNetworkBinaryModel"/>, <see cref="NeuralNetworkRegressionModel"/> add their task's columns).
/// </summary>
/// <remarks>
/// <para>
/// Each dense and convolution layer's weight is held for prediction in the format measured fastest for it on this
/// machine (<see cref="WeightFormat.Auto"/>; <see cref="WeightFormats"/> reports the choices; <c>WithWeightFormats</c>
/// forces a format or asks for the reproducible <see cref="WeightFormat.FixedRule"/>): sparse models predict faster than dense ones.
/// </para>
/// <para>
/// <see cref="Transform"/> scores rows in blocks through the engine's batched path on all its threads;
/// ML.NET's <c>PredictionEngine</c> goes through <see cref="GetRowToRowMapper"/>, one example at a time on the
/// single-example path. The model is safe to use from several threads at once (each cursor and each engine gets
/// buffers of its own; the sparse prediction formats are shared); one <c>PredictionEngine</c> is not, and one used
/// from two threads at once throws <see cref="InvalidOperationException"/>. Cursors and mapper rows refuse use after
/// <c>Dispose</c> (<see cref="ObjectDisposedException"/>).
/// </para>
/// <para>
/// Non-finite input, one policy on every path: training refuses a NaN or ±∞ feature (naming the row, slot and
/// column); scoring gives such an example NaN scores and no predicted label (see each model's remarks), checked on
/// the features themselves, so whichever formats a path holds the layers in gives the same answer.
/// </para>
/// </remarks>
public abstract class NeuralNetworkModel : ITransformer
{
    /// <summary>
    /// Widest activation × examples per batched session call: at most about 1 MB, a Zen 5 core's L2 cache (measured
    /// for the CNN, whose fused convolutions write 25 KB per example: chunks of 32 beat 64 and 16).
    /// </summary>
    private const int ChunkFloats = 1 << 18;
    private readonly SequentialNetwork _network;
    private protected readonly object _lock = new();
    private readonly ConcurrentBag<InferenceSession> _sessions = [];
    private InferenceSession? _lastSession; // the session most recently given back: one interlocked exchange rents it (a bag round trip costs about five times more)
    private readonly ConcurrentBag<InferenceSession> _batchSessions = [];
    private int _chunk; // examples per batched session call; 0 until the first call
    private readonly Engine.IWeightMatrix?[] _predictionWeights;
    private readonly SequentialNetwork _predictionSource; // the network prediction copies are made from: the model's own or its compact form, hidden units in tile order (HiddenUnitOrder)

    private protected NeuralNetworkModel(SequentialNetwork network, OutputHead head, string featureColumnName, IReadOnlyList<TrainingProgress> history,
        TrainingState? training, System.Text.Json.Nodes.JsonObject? options, IReadOnlyDictionary<string, WeightFormat>? requestedFormats, bool compactPrediction)
    {
        if (network.OutputSize != head.Outputs)
            throw new ArgumentException($"The network has {network.OutputSize} outputs; the model needs {head.Outputs}.", nameof(network));
        _network = network;
        Head = head;
        FeatureColumnName = featureColumnName;
        TrainingHistory = history;
        Training = training;
        Options = options;
        // The densest level is the network as it is (its mask is that level's); another level is a masked copy.
        LevelNetwork = network.SparsityLevels is null || network.ActiveLevel == 0 ? network : network.CloneAtActiveLevel(network.Pool);
        Layers = LevelNetwork.Layers.Select(l => new LayerSummary(l)).ToArray();
        RequestedFormats = requestedFormats ?? new Dictionary<string, WeightFormat>();
        CompactPrediction = compactPrediction;
        _predictionSource = HiddenUnitOrder.Sorted(compactPrediction ? ChannelPruning.CompactNetwork.Build(ChannelPruning.CompactPlan.For(LevelNetwork), network.Pool) : LevelNetwork);
        (WeightFormats, _predictionWeights) = WeightFormatRule.Compile(_predictionSource, RequestedFormats);
    }

    /// <summary>
    /// True when the model predicts through its compact form: a channel-pruned network rewritten without its pruned
    /// channels (see <c>mlContext.Sparsity().Compact</c>), made when the model is. The model itself (<see cref="Layers"/>,
    /// the sparsity report, saving, ONNX export, further training) stays the channel-pruned network; predictions equal it
    /// within float rounding. <see cref="WeightFormats"/> then describes the compact layers.
    /// </summary>
    public bool CompactPrediction { get; }

    /// <summary>The same model, predicting through its compact form (<paramref name="compact"/> = true) or through the network as it is.</summary>
    /// <exception cref="ArgumentException">The network has no pruned channel that can be removed, or a layer after a pruned one that compaction cannot follow; the message names the layer.</exception>
    public virtual NeuralNetworkModel WithCompactPrediction(bool compact = true)
    {
        lock (_lock)
            return With(_network.Clone(_network.Pool), Training, RequestedFormats, compact);
    }

    /// <summary>
    /// The sparsity levels the model serves, densest first, when it was trained with nested sparsity
    /// (<see cref="NestedSparsity.NestedSparsityOptions"/>): one set of weights, each level's a subset of the next denser
    /// level's. Empty for a model of one level.
    /// </summary>
    public IReadOnlyList<double> SparsityLevels => _network.SparsityLevels ?? [];

    /// <summary>The level of <see cref="SparsityLevels"/> this model predicts at (the densest unless chosen with <see cref="AtSparsityLevel"/>); null for a model of one level.</summary>
    public double? SparsityLevel => _network.SparsityLevels?[_network.ActiveLevel];

    /// <summary>
    /// The same model predicting at another of its <see cref="SparsityLevels"/>: the weights that level prunes are 0 and
    /// its layers take the prediction formats measured fastest at its sparsity. The sparsity report, the layer summary
    /// and ONNX export describe that level; the model file keeps every level and remembers the one chosen.
    /// </summary>
    /// <param name="level">One of <see cref="SparsityLevels"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The model has no such level; the message lists the levels it has.</exception>
    public virtual NeuralNetworkModel AtSparsityLevel(double level)
    {
        double[] levels = _network.SparsityLevels ?? throw new ArgumentOutOfRangeException(nameof(level), level,
            "The model serves one sparsity level only: it was not trained with nested sparsity (NestedSparsityOptions).");
        int index = NestedSparsity.NestedSparsityOptions.IndexOf(levels, level, nameof(level));
        lock (_lock)
        {
            var network = _network.Clone(_network.Pool);
            network.ActiveLevel = index;
            return With(network, Training, RequestedFormats, CompactPrediction);
        }
    }

    /// <summary>The network at the level the model predicts at: the model's own network unless it has several levels (see <see cref="SparsityLevels"/>).</summary>
    internal SequentialNetwork LevelNetwork { get; }

    /// <summary>The same model on the compact network <paramref name="compact"/> (made by <c>Compact</c>); the optimiser state no longer fits and is dropped.</summary>
    internal NeuralNetworkModel WithCompactNetwork(SequentialNetwork compact) => With(compact, null, RequestedFormats, compactPrediction: false);

    /// <summary>
    /// The storage each dense and convolution layer's weight has for prediction, its sparsity, how the format was chosen
    /// and which vector instructions its kernels run here (a scalar fallback is noted).
    /// </summary>
    public IReadOnlyList<LayerWeightFormat> WeightFormats { get; }

    /// <summary>The formats asked for by layer name ("*" for all layers); empty when every layer is <see cref="WeightFormat.Auto"/>.</summary>
    internal IReadOnlyDictionary<string, WeightFormat> RequestedFormats { get; }

    /// <summary>The same model with every dense and convolution layer's prediction weight in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">A layer cannot take the format (e.g. <see cref="WeightFormat.NM"/> on a weight that is not N:M sparse); the message names the layer.</exception>
    public virtual NeuralNetworkModel WithWeightFormats(WeightFormat format) =>
        WithWeightFormats(new Dictionary<string, WeightFormat> { [WeightFormatRule.AllLayers] = format });

    /// <summary>The same model with the named layers' prediction weights in the given formats (others stay <see cref="WeightFormat.Auto"/>).</summary>
    /// <param name="formats">Formats by layer name (see <see cref="Layers"/>); the key "*" applies to every layer not named.</param>
    /// <exception cref="ArgumentException">A name is not a dense or convolution layer of the model, or a layer cannot take its format.</exception>
    public virtual NeuralNetworkModel WithWeightFormats(IReadOnlyDictionary<string, WeightFormat> formats)
    {
        ArgumentNullException.ThrowIfNull(formats);
        lock (_lock)
            return With(_network.Clone(_network.Pool), Training, new Dictionary<string, WeightFormat>(formats), CompactPrediction);
    }

    /// <summary>The same model (same head, labels, columns, history and options) with another network, training state, requested formats and prediction form.</summary>
    private protected abstract NeuralNetworkModel With(SequentialNetwork network, TrainingState? training, IReadOnlyDictionary<string, WeightFormat> formats,
        bool compactPrediction);

    /// <summary>The name of the features column the model reads.</summary>
    public string FeatureColumnName { get; }

    /// <summary>The shape of one example's features the model expects.</summary>
    public IReadOnlyList<int> InputShape => _network.InputShape;

    /// <summary>The layers with their parameter counts and costs.</summary>
    public IReadOnlyList<LayerSummary> Layers { get; }

    /// <summary>The total number of trainable values.</summary>
    public long ParameterCount => Layers.Sum(l => l.ParameterCount);

    /// <summary>The progress reported at the end of every training epoch.</summary>
    public IReadOnlyList<TrainingProgress> TrainingHistory { get; }

    internal SequentialNetwork Network => _network;

    /// <summary>What the model makes of the network's outputs (scores, predicted label, columns).</summary>
    internal OutputHead Head { get; }

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
                _batchSessions.Add(new InferenceSession(network, Head, chunk));
                _chunk = chunk;
            }

            return _chunk;
        }
    }

    /// <summary>The optimiser state for continuing training; null after operations that change the weights outside training (pruning).</summary>
    internal TrainingState? Training { get; }

    /// <summary>The trainer options the model was trained with, as recorded in model files (informational).</summary>
    internal System.Text.Json.Nodes.JsonObject? Options { get; }

    /// <summary>Adds the model's output columns to <paramref name="input"/> (lazily, as ML.NET transformers do).</summary>
    /// <remarks>
    /// Cursors read the features ahead in blocks and score each block through the batched path: the rows go in chunks
    /// of a few examples (as many as keep a chunk's widest activation within about 1 MB, a power of two up to 64, and at
    /// least one chunk per thread), which the engine's threads take one at a time. How rows are chunked can change their
    /// scores in the last bits (float rounding).
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The features column is missing or not a vector of the model's size.</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new BlockMappedDataView(new ScoreMapping(this), input, GetOutputSchema(input.Schema));
    }

    /// <summary>The input columns with the model's output columns added.</summary>
    /// <exception cref="ArgumentOutOfRangeException">See <see cref="Transform"/>.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema);
        return Head.AddColumns(inputSchema);
    }

    /// <summary>True: ML.NET's prediction engine maps one row at a time through <see cref="GetRowToRowMapper"/>.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>A mapper that scores one row at a time on the single-example path (what ML.NET's <c>PredictionEngine</c> uses).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new BlockRowMapper(new ScoreMapping(this), inputSchema, GetOutputSchema(inputSchema));
    }

    /// <summary>Saves the model for <c>mlContext.Model.Save</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => Save(ctx);

    private protected abstract void Save(ModelSaveContext ctx);

    /// <summary>The features column of <paramref name="schema"/>, checked against the model's input size.</summary>
    internal virtual DataViewSchema.Column CheckInput(DataViewSchema schema)
    {
        var features = DataViewReader.FeatureColumn(schema, FeatureColumnName);
        CheckFeatureLength(((VectorDataViewType)features.Type).Size, FeatureColumnName);
        return features;
    }

    /// <summary>Scores <paramref name="count"/> rows of <paramref name="features"/> into scores (<see cref="OutputHead.Width"/> per row) and predicted labels (see <see cref="Transform"/>).</summary>
    internal void Score(float[] features, int count, float[] scores, int[] predicted)
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
            InferenceSession session = _batchSessions.TryTake(out InferenceSession? s) ? s : new InferenceSession(PredictionNetwork(Engine.WorkerPool.Inline), Head, most);
            try
            {
                session.Score(features, c * chunk, Math.Min(chunk, count - c * chunk), scores, predicted);
            }
            finally
            {
                _batchSessions.Add(session);
            }
        }, this);
    }

    /// <summary>Scores one example: writes its scores (<see cref="OutputHead.Width"/> values) into <paramref name="scores"/> and returns the predicted label (-1: none).</summary>
    /// <param name="features">The example's features (<see cref="InputShape"/> values).</param>
    /// <param name="scores">Receives the scores.</param>
    /// <remarks>Thread-safe; allocates nothing once each calling thread has been served.</remarks>
    internal int Predict(ReadOnlySpan<float> features, Span<float> scores)
    {
        CheckFeatureLength(features.Length, nameof(features));
        if (scores.Length < Head.Width)
            throw new ArgumentException($"The scores span has {scores.Length} elements; {Head.Width} are needed.", nameof(scores));
        InferenceSession session = RentSession();
        try
        {
            return session.Predict(features, scores[..Head.Width]);
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
    internal InferenceSession CreateSession() => new(PredictionNetwork(_network.Pool), Head);

    /// <summary>
    /// A copy of the network whose dense and convolution layers predict from the model's prediction formats (shared),
    /// running on <paramref name="pool"/>. The model's own network never carries them, so code that trains or
    /// evaluates it never sees a stale snapshot.
    /// </summary>
    internal SequentialNetwork PredictionNetwork(Engine.WorkerPool pool)
    {
        SequentialNetwork copy = _predictionSource.Clone(pool);
        WeightFormatRule.Attach(copy, _predictionWeights);
        copy.FuseForInference();
        return copy;
    }

    /// <summary>The sparsity of the weights, per layer and in total.</summary>
    public Masks.SparsityReport GetSparsityReport()
    {
        lock (_lock) return Masks.SparsityReport.For(LevelNetwork);
    }

    /// <summary>A fixed-width table of the layers, their shapes, parameter counts and multiply-adds.</summary>
    public string Summary() => LayerSummary.FormatTable(Layers);

    internal void CheckFeatureLength(int length, string argument)
    {
        if (length != _network.InputSize)
            throw new ArgumentOutOfRangeException(argument, length,
                $"The model's first layer '{_network.Layers[0].Name}' expects {_network.InputSize} feature values per example " +
                $"(shape {Engine.Shape.Format(_network.InputShape)}) in column '{FeatureColumnName}'.");
    }
}
