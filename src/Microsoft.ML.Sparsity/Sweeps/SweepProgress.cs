namespace Microsoft.ML.Sparsity.Sweeps;

/// <summary>
/// A sweep's progress: after each epoch of a trial, when a trial ends, and when latency measurement starts. Reported
/// from the trials' threads one at a time.
/// </summary>
/// <param name="Trial">The trial's index (-1 for the latency measurement).</param>
/// <param name="Settings">The trial's settings (null for the latency measurement).</param>
/// <param name="Epoch">The epoch just finished (0 when the trial ends or for the measurement).</param>
/// <param name="ValidationAccuracy">The validation accuracy after that epoch, or the trial's last.</param>
/// <param name="Status">Set when the trial has ended.</param>
/// <param name="FinishedTrials">Trials finished so far, those from the journal included.</param>
/// <param name="Trials">The budget in trials.</param>
public sealed record SweepProgress(int Trial, TrialSettings? Settings, int Epoch, double? ValidationAccuracy, SweepTrialStatus? Status, int FinishedTrials, int Trials);
