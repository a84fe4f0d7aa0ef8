using Microsoft.ML.Sparsity.Network;

namespace Microsoft.ML.Sparsity.Training;

/// <summary>
/// The options every neural-network trainer of the package shares (multiclass, binary classification, regression);
/// each trainer's <c>Options</c> derives from it. Every field has a documented default.
/// </summary>
public abstract class NeuralNetworkTrainerOptions
{
    private protected NeuralNetworkTrainerOptions()
    {
    }

    /// <summary>
    /// The label column. Default "Label". What it must hold depends on the trainer: a key for multiclass
    /// classification, a <see cref="bool"/> for binary classification, a <see cref="float"/> for regression.
    /// </summary>
    public string LabelColumnName = "Label";

    /// <summary>The features column: a known-size vector of <see cref="float"/>. Default "Features".</summary>
    public string FeatureColumnName = "Features";

    /// <summary>
    /// The shape of one example's features, e.g. <c>[28, 28, 1]</c> (height, width, channels) for convolution layers;
    /// null (default) takes the features column's dimensions (a flat vector unless the column has several).
    /// </summary>
    public int[]? InputShape;

    /// <summary>The engine's thread count; null (default) uses every processor. Results do not depend on it.</summary>
    public int? NumberOfThreads;

    /// <summary>The hidden layers, in order; the output layer is added by the trainer. Default: LeNet-300-100's hidden layers.</summary>
    public IList<LayerDefinition> Layers = Network.Layers.LeNet300100();

    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs = 10;

    /// <summary>Examples per optimiser step. Default 64.</summary>
    public int BatchSize = 64;

    /// <summary>The optimiser. Default: SGD with learning rate 0.01 and momentum 0.9.</summary>
    public OptimizerOptions Optimizer = new SgdOptimizerOptions();

    /// <summary>How the learning rate changes over the steps. Default: constant.</summary>
    public LearningRateSchedule LearningRateSchedule = LearningRateSchedule.Constant();

    /// <summary>The weight initialiser. Default: Glorot uniform.</summary>
    public WeightInitializer WeightInitializer = WeightInitializer.GlorotUniform;

    /// <summary>The fraction of the training data held out (seeded) to report validation metrics each epoch, in [0, 1). Default 0.</summary>
    public float ValidationFraction;

    /// <summary>Stop when the validation loss has not improved for this many epochs, and keep the best weights (0 = never stop early). Needs validation data. Default 0.</summary>
    public int EarlyStoppingPatience;

    /// <summary>Shuffle the examples every epoch (seeded). Default true.</summary>
    public bool Shuffle = true;

    /// <summary>
    /// λ of network slimming's L1 penalty λ·Σ|γ| on the scales γ of every batch-norm layer (Liu et al., "Learning
    /// Efficient Convolutional Networks through Network Slimming", 2017), added to the loss; training follows its
    /// subgradient λ·sign(γ). It pushes the scales of channels the network can do without towards 0, ready for
    /// pruning by <see cref="Masks.ImportanceCriterion.BatchNormScale"/>. The paper picks λ by a grid search over
    /// 1e-3, 1e-4 and 1e-5: 1e-4 for VGGNet, 1e-5 for ResNet and DenseNet. Must be finite and ≥ 0; above 0 the network
    /// needs a batch-norm layer. Default 0 (off).
    /// </summary>
    public float BatchNormScaleL1;

    /// <summary>
    /// How the network is made sparse while training, e.g. <c>mlContext.Sparsity().GradualMagnitudePruning(0.9)</c> or a
    /// <see cref="Pruning.PruningOptions"/>; null (default) trains a dense network.
    /// </summary>
    public Masks.SparsityMethod? Sparsity;

    /// <summary>The seed of initialisation, shuffling and dropout; <see langword="null"/> draws one from the <see cref="MLContext"/>. Default null.</summary>
    public int? Seed;
}
