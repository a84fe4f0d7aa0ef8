namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>How a trial ended.</summary>
public enum SweepTrialStatus
{
    /// <summary>Trained for all its epochs; it has a model.</summary>
    Completed,

    /// <summary>Stopped early by successive halving at a rung; no model.</summary>
    Stopped,

    /// <summary>Training failed (the trial's <see cref="SweepTrial.Error"/> says why); no model.</summary>
    Failed,
}

/// <summary>One trial of a sweep: its settings, learning curve and, when completed, its model's measurements.</summary>
public sealed class SweepTrial
{
    private readonly Engine.WorkerPool _pool;
    private readonly object _loading = new();
    private Models.NeuralNetworkMulticlassModel? _model;

    internal SweepTrial(int index, TrialSettings settings, SweepTrialStatus status, IReadOnlyList<double> curve, double? sparsity, long? bytes,
        TimeSpan duration, string? error, string? modelPath, Models.NeuralNetworkMulticlassModel? model, Engine.WorkerPool pool)
    {
        (Index, Settings, Status, ValidationCurve, Sparsity, Bytes, Duration, Error, ModelPath, _model, _pool) =
            (index, settings, status, curve, sparsity, bytes, duration, error, modelPath, model, pool);
    }

    /// <summary>The trial's number, from 0 (the dense reference when the search space lists it).</summary>
    public int Index { get; }

    /// <summary>What the trial trained.</summary>
    public TrialSettings Settings { get; }

    /// <summary>How it ended.</summary>
    public SweepTrialStatus Status { get; }

    /// <summary>The validation accuracy after each epoch it trained.</summary>
    public IReadOnlyList<double> ValidationCurve { get; }

    /// <summary>The validation accuracy after its last epoch (NaN when it trained none).</summary>
    public double ValidationAccuracy => ValidationCurve.Count > 0 ? ValidationCurve[^1] : double.NaN;

    /// <summary>The completed model's sparsity (fraction of prunable weights that are zero).</summary>
    public double? Sparsity { get; }

    /// <summary>The completed model's file size in bytes.</summary>
    public long? Bytes { get; }

    /// <summary>
    /// The completed model's single-prediction latency on this machine in microseconds (median over rounds), when the
    /// sweep measures latency. (Not a <see cref="TimeSpan"/>: its 0.1 µs resolution is coarse for 1–2 µs predictions.)
    /// </summary>
    public double? LatencyMicroseconds { get; internal set; }

    /// <summary>Wall time the trial took.</summary>
    public TimeSpan Duration { get; }

    /// <summary>Why a failed trial failed.</summary>
    public string? Error { get; }

    /// <summary>The completed model's file in the journal folder (null without a journal).</summary>
    public string? ModelPath { get; }

    /// <summary>The completed model (loaded from <see cref="ModelPath"/> the first time when the trial came from a journal).</summary>
    /// <exception cref="InvalidOperationException">The trial did not complete, so it has no model.</exception>
    public Models.NeuralNetworkMulticlassModel GetModel()
    {
        if (Status != SweepTrialStatus.Completed) throw new InvalidOperationException($"Trial {Index} ({Settings}) is {Status}: only completed trials have a model.");
        lock (_loading) return _model ??= (Models.NeuralNetworkMulticlassModel)Serialization.ModelFile.Load(ModelPath!, _pool, $"trial {Index}'s model");
    }

    /// <summary>"#3 GradualMagnitude 90% …: 89.1%" and how it ended.</summary>
    public override string ToString() =>
        $"#{Index} {Settings}: {Status}" + (ValidationCurve.Count > 0 ? $", {ValidationAccuracy:P2} after {ValidationCurve.Count} epochs" : "");
}
