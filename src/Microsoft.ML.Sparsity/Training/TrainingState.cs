namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// What a trained model carries so that training can continue exactly where it stopped: the optimiser's kind, its
/// per-parameter state (momentum, Adam moments) and step count, and the number of steps taken.
/// </summary>
internal sealed class TrainingState
{
    public TrainingState(string optimizer, int stateSlots, float[][] optimizerState, long optimizerSteps, long steps)
    {
        Optimizer = optimizer;
        StateSlots = stateSlots;
        OptimizerState = optimizerState;
        OptimizerSteps = optimizerSteps;
        Steps = steps;
    }

    /// <summary>The optimiser's kind: "sgd" or "adam" (state is reused only by an optimiser of the same kind and slot count).</summary>
    public string Optimizer { get; }
    public int StateSlots { get; }
    public float[][] OptimizerState { get; }
    public long OptimizerSteps { get; }
    public long Steps { get; }

    public static TrainingState From(Optimizer optimizer, long steps) =>
        new(KindOf(optimizer), optimizer.StateSlots, optimizer.State.Select(s => (float[])s.Clone()).ToArray(), optimizer.StepCount, steps);

    public static string KindOf(Optimizer optimizer) => optimizer is AdamOptimizer ? "adam" : "sgd";

    /// <summary>Loads this state into <paramref name="optimizer"/> when it is of the same kind and shape; returns whether it did.</summary>
    public bool TryRestore(Optimizer optimizer)
    {
        if (KindOf(optimizer) != Optimizer || optimizer.StateSlots != StateSlots || optimizer.State.Length != OptimizerState.Length) return false;
        for (int i = 0; i < OptimizerState.Length; i++)
        {
            if (optimizer.State[i].Length != OptimizerState[i].Length) return false;
        }
        for (int i = 0; i < OptimizerState.Length; i++) OptimizerState[i].CopyTo(optimizer.State[i], 0);
        optimizer.StepCount = OptimizerSteps;
        return true;
    }
}
