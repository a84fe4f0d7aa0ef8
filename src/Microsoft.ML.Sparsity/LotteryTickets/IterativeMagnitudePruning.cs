using Microsoft.ML.Runtime;
using Microsoft.ML.Sparsity.Data;
using Microsoft.ML.Sparsity.Engine;
using Microsoft.ML.Sparsity.Models;

namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>
/// Iterative magnitude pruning, which finds lottery tickets (Frankle &amp; Carbin, "The Lottery Ticket Hypothesis",
/// 2019): train, prune a fraction of the surviving weights by magnitude, reset the survivors, retrain; level after
/// level. Create it with <c>mlContext.Sparsity().LotteryTicket(...)</c>; see <see cref="IterativeMagnitudePruningOptions"/>.
/// </summary>
/// <remarks>
/// <see cref="Fit"/> returns the last level's trained ticket; <see cref="Run"/> also returns every level's results,
/// the controls' and the ticket itself. With <see cref="IterativeMagnitudePruningOptions.CheckpointDirectory"/> set, a
/// run that was stopped (cancelled, killed) resumes from its last checkpoint when started again with the same options,
/// seed and data, and ends with bit-identical weights to a run never stopped.
/// </remarks>
public sealed class IterativeMagnitudePruning : IEstimator<NeuralNetworkMulticlassModel>
{
    private readonly SparsityHost _host;
    private readonly IterativeMagnitudePruningOptions _options;

    internal IterativeMagnitudePruning(IHostEnvironment environment, IterativeMagnitudePruningOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _host = new SparsityHost(environment, nameof(IterativeMagnitudePruning), options.Training?.NumberOfThreads);
    }

    /// <summary>Runs every level on <paramref name="input"/> (validation held out by <c>Training.ValidationFraction</c>) and returns the last level's trained ticket.</summary>
    public NeuralNetworkMulticlassModel Fit(IDataView input) => Run(input).Model;

    /// <summary>The input columns with the ticket's <c>Score</c> and <c>PredictedLabel</c> added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return SchemaShapes.AddScoreColumns(inputSchema, _options.Training.FeatureColumnName, _options.Training.LabelColumnName);
    }

    /// <summary>Runs every level and returns the results per level, the ticket and its trained model.</summary>
    /// <param name="train">The training data.</param>
    /// <param name="test">Test data, evaluated at each run's early-stop point and end; null: no test accuracy.</param>
    /// <param name="validation">Validation data for the early-stop point; null: <c>Training.ValidationFraction</c> of <paramref name="train"/> is held out (seeded).</param>
    /// <param name="progress">Receives each training run's result as it finishes.</param>
    /// <param name="cancellationToken">Stops between steps with <see cref="OperationCanceledException"/>; the last checkpoint stays readable.</param>
    /// <exception cref="ArgumentException">Bad options or data, or a checkpoint that belongs to other options, architecture or data (the message names what differs).</exception>
    /// <exception cref="Serialization.ModelFormatException">The checkpoint is damaged.</exception>
    public LotteryTicketResult Run(IDataView train, IDataView? test = null, IDataView? validation = null, IProgress<LotteryTicketLevelResult>? progress = null,
        CancellationToken cancellationToken = default) =>
        new ImpRun(_host, _options, Read(train)!, Read(validation), Read(test)).Run(progress, cancellationToken);

    /// <summary>As the public <c>Run</c>, on data already read (a sweep's lottery-ticket trials).</summary>
    internal LotteryTicketResult RunOnDatasets(Dataset train, Dataset? validation, Dataset? test, IProgress<LotteryTicketLevelResult>? progress, CancellationToken cancellationToken) =>
        new ImpRun(_host, _options, train, validation, test).Run(progress, cancellationToken);

    private Dataset? Read(IDataView? data) =>
        data is null ? null : DataViewReader.Read(data, _options.Training.FeatureColumnName, _options.Training.LabelColumnName, _options.Training.InputShape);
}
