using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Data;

namespace Microsoft.ML.Sparsity.Models;

/// <summary>
/// Scores one row at a time on the model's single-example path: what ML.NET's <c>PredictionEngine</c> and
/// transformer chains' row mappers call. A row scores its example once per input position, whichever output
/// column is read first.
/// </summary>
internal sealed class ScoringRowMapper(NeuralNetworkModel model, DataViewSchema inputSchema, DataViewSchema outputSchema)
    : BlockRowMapper(new ScoreMapping(model), inputSchema, outputSchema);
