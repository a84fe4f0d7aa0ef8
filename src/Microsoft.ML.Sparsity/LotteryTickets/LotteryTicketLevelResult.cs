namespace Microsoft.ML.Sparsity.LotteryTickets;

/// <summary>One training run of iterative magnitude pruning: the ticket (or a control) at one level.</summary>
/// <param name="Level">The level: 0 is the dense network, level r has been pruned r times.</param>
/// <param name="Variant">The ticket or the control trained.</param>
/// <param name="WeightsRemaining">The fraction of dense and convolution weights kept (biases are never pruned and not counted).</param>
/// <param name="EarlyStopIteration">The step (position in the learning-rate schedule) of the minimum validation loss, evaluated every <see cref="IterativeMagnitudePruningOptions.EvaluationInterval"/> steps and at the end.</param>
/// <param name="EarlyStopValidationLoss">The minimum validation loss.</param>
/// <param name="EarlyStopTestAccuracy">Test accuracy at the early-stop step; null without test data.</param>
/// <param name="FinalValidationLoss">The validation loss at the end of training.</param>
/// <param name="FinalTestAccuracy">Test accuracy at the end of training; null without test data.</param>
/// <param name="Seconds">Wall-clock seconds of this run in the process that finished it (a resumed run counts only the time since resuming).</param>
public sealed record LotteryTicketLevelResult(
    int Level,
    LotteryTicketVariant Variant,
    double WeightsRemaining,
    long EarlyStopIteration,
    double EarlyStopValidationLoss,
    double? EarlyStopTestAccuracy,
    double FinalValidationLoss,
    double? FinalTestAccuracy,
    double Seconds);
