using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Sweeps;
using Microsoft.ML.Sparsity.Tests.Masks;

namespace Microsoft.ML.Sparsity.Tests.Sweeps;

/// <summary>The real sweep the kill test runs in a child process, resumes in the test and compares with an uninterrupted one.</summary>
internal static class SweepChild
{
    /// <summary>Printed as each trial ends: "ended trial N".</summary>
    public const string Ended = "ended trial ";

    public static SparsitySweepOptions Options(string folder) => new()
    {
        SearchSpace = new SweepSearchSpace
        {
            Methods = [SweepMethod.Dense, SweepMethod.GradualMagnitude, SweepMethod.Random, SweepMethod.RigL],
            Sparsities = [0.9],
            Allocations = [Microsoft.ML.Sparsity.Masks.LayerAllocation.ErdosRenyiKernel],
            Epochs = [6],
        },
        Layers = [Layers.Dense(32), Layers.ReLU()],
        FirstRungEpochs = 2,
        MaxTrials = 10,
        ParallelTrials = 2,
        Objectives = SweepObjectives.Bytes,
        JournalFolder = folder,
        Seed = 3,
    };

    public static (IDataView Train, IDataView Validation) Data(MLContext ml)
    {
        var split = ml.Data.TrainTestSplit(MaskedTrainingTests.SyntheticData(768), 0.25, seed: 1);
        return (split.TrainSet, split.TestSet);
    }

    /// <summary>Runs the sweep, slowed down (50 ms an epoch: the results do not change) so the test can kill it in the middle.</summary>
    public static void Run(string folder, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml);
        ml.Sparsity().CreateSweep(Options(folder)).Run(train, validation, new Microsoft.ML.Sparsity.Training.SynchronousProgress<SweepProgress>(p =>
        {
            if (p.Status is null) Thread.Sleep(50);
            else
            {
                output.WriteLine(Ended + p.Trial);
                output.Flush();
            }
        }));
    }
}
