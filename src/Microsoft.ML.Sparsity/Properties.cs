using System.Runtime.CompilerServices;

// The test and benchmark assemblies exercise the engine's internals directly.
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Tests")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.PerformanceTests")]
[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.KernelCheck")]
