using System.Diagnostics;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;

namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// A sweep over sparsity methods, sparsities, patterns and training settings that returns every trial and the Pareto
/// front of accuracy against latency and bytes, as AutoML's experiment does for accuracy alone. Create it with
/// <c>mlContext.Sparsity().CreateSweep(options)</c> and run it on training and validation data.
/// </summary>
/// <remarks>
/// Trials are drawn from the search space by index (trial i's settings depend on the seed and i only) and run in index
/// order, <see cref="SparsitySweepOptions.ParallelTrials"/> at a time, each with its share of the threads. With a
/// journal folder each finished trial is written there at once, and a sweep started again on the folder (after a
/// crash, kill or cancellation) runs only the trials that have no record; the stopped and completed trials, and so the
/// front, are those an uninterrupted sweep gets (latencies are measured anew). Training does not depend on the thread
/// count, so neither do the results.
/// </remarks>
public sealed class SparsitySweep
{
    private readonly MLContext _context;
    private readonly SparsitySweepOptions _options;
    private readonly WorkerPool _pool;

    /// <summary>The pool the trials' models predict on.</summary>
    internal WorkerPool Pool => _pool;

    /// <summary>The sweep's options.</summary>
    internal SparsitySweepOptions Options => _options;

    internal SparsitySweep(MLContext context, SparsitySweepOptions options, WorkerPool pool)
    {
        options.Validate();
        (_context, _options, _pool) = (context, options, pool);
    }

    /// <summary>The settings trial <paramref name="index"/> trains: what a sweep of these options draws for it.</summary>
    public TrialSettings TrialSettings(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return _options.SearchSpace.Draw(_options.Seed, index);
    }

    /// <summary>Runs the sweep (or resumes it from its journal) and measures the completed models.</summary>
    /// <param name="train">The training data: a float vector "Features" column and a key "Label" column.</param>
    /// <param name="validation">The validation data the trials are compared on, with the same columns.</param>
    /// <param name="progress">Receives a report after each epoch and trial (see <see cref="SweepProgress"/>).</param>
    /// <param name="cancellationToken">Stops the sweep; finished trials stay in the journal.</param>
    /// <exception cref="ArgumentException">The journal folder holds another sweep (the message names what differs), or a column is missing.</exception>
    /// <exception cref="InvalidDataException">A journal record is damaged; the message names the file.</exception>
    public SweepResult Run(IDataView train, IDataView validation, IProgress<SweepProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        var (trainSet, validationSet) = Reader().Read(train, validation);
        var runner = new NetworkTrialRunner(_context, trainSet, validationSet!, [.. _options.Layers], _options.BatchSize);
        string data = DescribeData(trainSet, validationSet!, Fingerprint(trainSet, validationSet!));
        return Measured(Run(runner, data, progress, cancellationToken), validationSet!.GetFeatures(0).ToArray(), progress, cancellationToken);
    }

    /// <summary>
    /// Runs the sweep with <paramref name="folds"/>-fold cross-validation: every trial trains one model per fold (the
    /// folds in parallel, splitting the trial's threads), its learning curve is the mean over the folds of each epoch's
    /// accuracy on the fold held out (successive halving decides on that mean), and its model, measured for latency and
    /// bytes, is the first fold's.
    /// </summary>
    /// <param name="data">All the data (float vector "Features", key "Label"), split into folds by ML.NET's <c>CrossValidationSplit</c> with the sweep's seed.</param>
    /// <param name="folds">The number of folds, 2 to 20.</param>
    /// <param name="progress">Receives a report after each epoch and trial.</param>
    /// <param name="cancellationToken">Stops the sweep; finished trials stay in the journal.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="folds"/> is outside 2 to 20.</exception>
    public SweepResult Run(IDataView data, int folds, IProgress<SweepProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (folds is < 2 or > 20) throw new ArgumentOutOfRangeException(nameof(folds), folds, "Cross-validation takes 2 to 20 folds.");
        var reader = Reader();
        var splits = _context.Data.CrossValidationSplit(data, folds, seed: _options.Seed).Select(fold => reader.Read(fold.TrainSet, fold.TestSet)).ToList();
        var runner = new CrossValidationTrialRunner([.. splits.Select(s => new NetworkTrialRunner(_context, s.Train, s.Validation!, [.. _options.Layers], _options.BatchSize))]);
        string description = $"data: {splits.Sum(s => s.Validation!.Count)} rows in {folds} folds, {splits[0].Train.FeatureLength} features, SHA-256 {Fingerprint([.. splits.Select(s => s.Validation!)])}";
        return Measured(Run(runner, description, progress, cancellationToken), splits[0].Validation!.GetFeatures(0).ToArray(), progress, cancellationToken);
    }

    /// <summary>The journal definition's line for training and validation data with SHA-256 <paramref name="hash"/>.</summary>
    internal static string DescribeData(Dataset train, Dataset validation, string hash) =>
        $"data: {train.Count} training rows, {validation.Count} validation rows, {train.FeatureLength} features, SHA-256 {hash}";

    /// <summary>The SHA-256 of the examples' features and labels, in order: a journal resumes only on the same data.</summary>
    internal static string Fingerprint(params Dataset[] sets)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var set in sets)
        {
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Features.AsSpan(0, set.Count * set.FeatureLength)));
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Labels.AsSpan(0, set.Count)));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>A trainer that only reads data (the trials make their own).</summary>
    private Training.NeuralNetworkMulticlassTrainer Reader() =>
        _context.MulticlassClassification.Trainers.NeuralNetwork(new Training.NeuralNetworkMulticlassTrainer.Options { Layers = [.. _options.Layers] });

    /// <summary>The result with the completed models' latency measured on <paramref name="example"/>, when latency is an objective.</summary>
    internal SweepResult Measured(SweepResult result, float[] example, IProgress<SweepProgress>? progress, CancellationToken cancellationToken)
    {
        if (!_options.Objectives.HasFlag(SweepObjectives.Latency)) return result;
        Report(progress, new SweepProgress(-1, null, 0, null, null, result.Trials.Count, _options.MaxTrials));
        LatencyMeasurement.Measure([.. result.Trials.Where(t => t.Status == SweepTrialStatus.Completed)], example, cancellationToken);
        return new SweepResult(result.Trials, _options.Objectives);
    }

    private readonly object _reporting = new();

    private void Report(IProgress<SweepProgress>? progress, SweepProgress value)
    {
        if (progress is null) return;
        lock (_reporting) progress.Report(value);
    }

    /// <summary>The sweep with a given trial runner (a fake one in tests), journaled to the options' folder; latency is not measured here.</summary>
    internal SweepResult Run(ITrialRunner runner, string data, IProgress<SweepProgress>? progress, CancellationToken cancellation) =>
        Run(runner, _options.JournalFolder is { } folder ? new SweepJournal(folder, Definition(data), _pool) : null, _options.Parallel, progress, cancellation);

    /// <summary>What makes two sweeps the same, with a line describing the data: what a journal checks before resuming.</summary>
    internal IReadOnlyList<string> Definition(string data) => [.. _options.Definition(), data];

    /// <summary>
    /// The sweep with a given trial runner and journal, <paramref name="parallel"/> trials at a time; latency is not
    /// measured here. A runner's <see cref="SweepHaltException"/> halts the sweep and its inner exception is rethrown;
    /// its <see cref="TrialNotStartedException"/> leaves the trial unrun; any other exception fails that trial only.
    /// </summary>
    internal SweepResult Run(ITrialRunner runner, ISweepJournal? journal, int parallel, IProgress<SweepProgress>? progress, CancellationToken cancellation)
    {
        var finished = journal?.ReadFinished(TrialSettings) ?? [];
        var halving = _options.Tuner == SweepTuner.SuccessiveHalving ? new SuccessiveHalving(_options.FirstRung, _options.ReductionFactor) : null;
        string[] brackets = [.. Enumerable.Range(0, _options.MaxTrials).Select(i => SuccessiveHalving.Bracket(TrialSettings(i)))];
        var board = new RungBoard(i => brackets[i]);
        foreach (var trial in finished.Values) board.End(trial.Index, trial.ValidationCurve);
        var trials = new SweepTrial?[_options.MaxTrials];
        foreach (var (index, trial) in finished)
            if (index < trials.Length) trials[index] = trial;
        parallel = Math.Min(parallel, _options.MaxTrials);
        int threads = Math.Max(1, Environment.ProcessorCount / parallel);
        long deadline = _options.MaxTime is { } time ? Stopwatch.GetTimestamp() + (long)(time.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        int next = 0, done = trials.Count(t => t is not null);
        object taking = new();
        // The first failure that is not a trial's own (a journal that cannot be written, a progress handler that throws)
        // halts the sweep: no worker takes another trial, the running ones are cancelled, and it is rethrown as itself.
        using var halt = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        Exception? failure = null;
        void Halt(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e is SweepHaltException { InnerException: { } cause } ? cause : e, null);
            halt.Cancel();
        }
        void Tell(SweepProgress value)
        {
            try
            {
                Report(progress, value);
            }
            catch (Exception e)
            {
                Halt(e);
                halt.Token.ThrowIfCancellationRequested();
            }
        }

        void Work()
        {
            try
            {
                WorkOn();
            }
            catch (Exception e) when (e is not OperationCanceledException || !halt.IsCancellationRequested)
            {
                Halt(e);
            }
            catch (OperationCanceledException)
            {
                // Halted or cancelled: the sweep's end says which.
            }
        }

        void WorkOn()
        {
            while (true)
            {
                int index;
                lock (taking)
                {
                    while (next < trials.Length && trials[next] is not null) next++;
                    if (next >= trials.Length || Stopwatch.GetTimestamp() >= deadline || halt.IsCancellationRequested) return;
                    index = next++;
                }
                var settings = TrialSettings(index);
                try
                {
                    trials[index] = RunTrial(index, settings);
                }
                catch (TrialNotStartedException)
                {
                    return; // the time budget ran out while the trial waited for a worker: this worker takes no more
                }
                finally
                {
                    // Ended whatever happened (a cancelled or failed write too): trials waiting at a rung on this one go on.
                    board.End(index, trials[index]?.ValidationCurve ?? board.Curve(index));
                }
                Tell(new SweepProgress(index, settings, 0, trials[index]!.ValidationCurve.Count > 0 ? trials[index]!.ValidationAccuracy : null,
                    trials[index]!.Status, Interlocked.Increment(ref done), trials.Length));
            }
        }

        SweepTrial RunTrial(int index, TrialSettings settings)
        {
            var start = Stopwatch.GetTimestamp();
            TrialOutcome outcome;
            SweepTrialStatus status;
            string? error = null;
            try
            {
                outcome = runner.Run(index, settings, threads, (epoch, accuracy) =>
                {
                    board.Record(index, epoch, accuracy);
                    Tell(new SweepProgress(index, settings, epoch, accuracy, null, Volatile.Read(ref done), trials.Length));
                    return halving is null || !halving.IsRung(settings, epoch) || halving.Continues(accuracy, board.Earlier(index, epoch, halt.Token));
                }, halt.Token);
                status = outcome.Model is null ? SweepTrialStatus.Stopped : SweepTrialStatus.Completed;
            }
            catch (Exception e) when (e is not SweepHaltException and not TrialNotStartedException && (e is not OperationCanceledException || !halt.IsCancellationRequested))
            {
                (outcome, status, error) = (new TrialOutcome(board.Curve(index), null), SweepTrialStatus.Failed, $"{e.GetType().Name}: {e.Message}");
            }
            var duration = Stopwatch.GetElapsedTime(start);
            return journal?.Write(index, settings, status, outcome, duration, error) ?? InMemory(index, settings, status, outcome, duration, error);
        }

        var workers = Enumerable.Range(0, parallel).Select(_ => Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        Task.WaitAll(workers, CancellationToken.None); // the workers catch everything and end their trials first
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        if (cancellation.IsCancellationRequested) throw new OperationCanceledException("The sweep was cancelled; its finished trials are in the journal.", cancellation);
        return new SweepResult([.. trials.Where(t => t is not null).Select(t => t!)], _options.Objectives);
    }

    private SweepTrial InMemory(int index, TrialSettings settings, SweepTrialStatus status, TrialOutcome outcome, TimeSpan duration, string? error) =>
        new(index, settings, status, outcome.Curve, outcome.ModelSparsity, outcome.ModelFileBytes()?.Length, duration, error, null, outcome.Model, _pool);

    /// <summary>
    /// The accuracies trials recorded at each epoch, and which trials have ended: a trial at a rung waits here until every
    /// trial of lower index in its bracket has either recorded that epoch or ended.
    /// </summary>
    private sealed class RungBoard(Func<int, string> bracketOf)
    {
        private readonly object _gate = new();
        private readonly Dictionary<int, List<double>> _curves = [];
        private readonly HashSet<int> _ended = [];

        public void Record(int trial, int epoch, double accuracy)
        {
            lock (_gate)
            {
                if (!_curves.TryGetValue(trial, out var curve)) _curves[trial] = curve = [];
                if (curve.Count == epoch - 1) curve.Add(accuracy);
                Monitor.PulseAll(_gate);
            }
        }

        public void End(int trial, IReadOnlyList<double> curve)
        {
            lock (_gate)
            {
                _curves[trial] = [.. curve];
                _ended.Add(trial);
                Monitor.PulseAll(_gate);
            }
        }

        public IReadOnlyList<double> Curve(int trial)
        {
            lock (_gate) return _curves.TryGetValue(trial, out var curve) ? [.. curve] : [];
        }

        /// <summary>The accuracies at <paramref name="epoch"/> of the trials of the same bracket before <paramref name="trial"/> that reach it, once all of them have reached it or ended.</summary>
        public IReadOnlyCollection<double> Earlier(int trial, int epoch, CancellationToken cancellation)
        {
            string bracket = bracketOf(trial);
            int[] rivals = [.. Enumerable.Range(0, trial).Where(j => bracketOf(j) == bracket)];
            lock (_gate)
            {
                while (true)
                {
                    cancellation.ThrowIfCancellationRequested();
                    bool waiting = false;
                    var accuracies = new List<double>();
                    foreach (int j in rivals)
                    {
                        var curve = _curves.GetValueOrDefault(j);
                        if (curve is not null && curve.Count >= epoch) accuracies.Add(curve[epoch - 1]);
                        else if (!_ended.Contains(j)) waiting = true;
                    }
                    if (!waiting) return accuracies;
                    Monitor.Wait(_gate, 100);
                }
            }
        }
    }
}
