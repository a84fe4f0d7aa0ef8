using System.Runtime.CompilerServices;

// The test and benchmark assemblies exercise the engine's internals directly.
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Tests")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.PerformanceTests")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.KernelCheck")]

// The plots and the command-line tool, built from this repository with the package, share its atomic file writer
// (AtomicFile) rather than keep copies of it.
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Plots")]
[assembly: InternalsVisibleTo("mlnet-sparsity")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Distributed")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Distributed.Tests")]
