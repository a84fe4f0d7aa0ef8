using Microsoft.ML.Sparsity.LotteryTickets;
using Microsoft.ML.Sparsity.Tests.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.LotteryTickets;

/// <summary>Lottery tickets on real data: a small slice of Fashion-MNIST, LeNet-300-100, the paper's optimiser.</summary>
public sealed class FashionMnistTicketTests
{
    [FashionMnistFact]
    public void AtOneEighthOfTheWeightsTheTicketBeatsItsRandomReinitialisation()
    {
        var train = TrainingData.FashionTrain.Take(6000);
        var test = TrainingData.FashionTest.Take(2000);
        var options = new IterativeMagnitudePruningOptions { Levels = 3, PruningRate = 0.5, Controls = LotteryTicketControls.RandomReinitialization, EvaluationInterval = 50 };
        options.Training.Epochs = 2;
        options.Training.Seed = 1;
        options.Training.NumberOfThreads = 1;
        var result = new MLContext(seed: 1).Sparsity().LotteryTicket(options).Run(train.AsDataView(), test.AsDataView());

        var dense = result.Levels[0];
        var ticket = result.Levels.Single(l => l.Level == 3 && l.Variant == LotteryTicketVariant.Ticket);
        var reinit = result.Levels.Single(l => l.Level == 3 && l.Variant == LotteryTicketVariant.RandomReinitialization);
        Assert.InRange(ticket.WeightsRemaining, 0.125, 0.127);   // hidden layers 12.5%, the output layer (p/2) 42.2%
        Assert.True(dense.EarlyStopTestAccuracy > 0.80, $"dense {dense.EarlyStopTestAccuracy:P2}");
        Assert.True(ticket.EarlyStopTestAccuracy > reinit.EarlyStopTestAccuracy + 0.01,
            $"ticket {ticket.EarlyStopTestAccuracy:P2}, re-initialised {reinit.EarlyStopTestAccuracy:P2}");
    }
}
