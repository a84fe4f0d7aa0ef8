using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Distributed.Tests")]
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Microsoft.ML.Sparsity.PerformanceTests")]
